// The evaluation core: runs models over chat examples and builds an EvaluationReport. A model is
// anything that can answer a prompt (EvalModel); a local one (localEvalModel) also gives the loss
// on the assistant tokens, from the trainer's own forward pass on exactly the tokens training
// puts its loss on (encodeChatForTraining), so "loss" here and the trainer's validation loss are
// the same number on the same examples.
import { ChatFormatError, ContextOverflowError, encodeChatForTraining, type ChatMessage } from './chat-format.ts';
import {
  isContainsMatch,
  isExactMatch,
  maxNewTokens,
  MAX_NEW_TOKENS_CAP,
  NORMALISATION,
  type EvaluationExample,
  type EvaluationProgress,
  type EvaluationReport,
  type ModelEvaluationSummary,
} from './evaluation-report.ts';
import { readGgufAdapter, readGgufModel } from './gguf-model.ts';
import { generate } from './inference.ts';
import type { LlamaModel, LoraAdapter, NamedTensor, TrainingSequence } from './llama-model.ts';
import { loraTensorNames } from './llama-model.ts';
import { createTokenizer, type Tokenizer } from './tokenizer.ts';
import { createTrainer } from './train.ts';
import { NodeAIError } from '../nodeai-error.ts';

/** A chat example to evaluate: a conversation whose last message is the expected assistant answer. */
export interface EvalExample {
  messages: ChatMessage[];
  tools?: unknown[];
}

/** Loss of one example: the mean over its `tokens` assistant tokens. */
export interface ExampleLoss {
  loss: number;
  tokens: number;
}

export interface EvalModel {
  /** The name the report uses for this model. */
  readonly name: string;
  /** Per-example losses (null where none can be had); absent for a model without log-probabilities. */
  losses?(examples: EvalExample[]): Promise<(ExampleLoss | null)[]>;
  /** The model's greedy answer to `prompt`, at most `maxTokens` new tokens. */
  answer(prompt: ChatMessage[], tools: unknown[] | undefined, maxTokens: number): Promise<string>;
  /** Tokens of `text` for this model (the answer budget is counted with it). */
  countTokens(text: string): number;
  dispose(): Promise<void>;
}

/** A chat-capable model that scores answers; its reply's first digit 1–5 is the score. */
export interface EvalJudge {
  readonly name: string;
  ask(messages: ChatMessage[]): Promise<string>;
}

export const JUDGE_RUBRIC =
  'Score the ANSWER against the EXPECTED answer to the CONVERSATION from 1 to 5: 5 = the same meaning and every fact of the expected answer, nothing wrong added; 4 = the same meaning with a small omission or different wording; 3 = partly right; 2 = mostly wrong, with a correct fragment; 1 = wrong, empty or unrelated. Reply with the digit only.';

export class EvaluationError extends NodeAIError {
  override readonly name = 'EvaluationError';
  constructor(code: string, message: string) {
    super(code, message, { status: 400 });
  }
}

/** The prompt and the expected answer of an example; refuses one that does not end with an assistant answer. */
export function splitExample(example: EvalExample, where: string): { prompt: ChatMessage[]; expected: string } {
  const messages = example.messages;
  const last = messages.at(-1);
  if (!last || last.role !== 'assistant' || typeof last.content !== 'string') {
    throw new EvaluationError('invalid_example', `${where}: the last message must be the expected assistant answer (a {"role": "assistant", "content": "…"} message); it is ${last ? `a ${last.role} message` : 'missing'}.`);
  }
  if (messages.length < 2) throw new EvaluationError('invalid_example', `${where}: has only the answer; give at least one message before it to prompt with.`);
  return { prompt: messages.slice(0, -1), expected: last.content };
}

export interface EvaluateOptions {
  judge?: EvalJudge;
  onProgress?: (p: EvaluationProgress) => void;
  signal?: AbortSignal;
}

/** Runs every model over every example; the models are the caller's to dispose. */
export async function evaluateModels(models: EvalModel[], examples: EvalExample[], options: EvaluateOptions = {}): Promise<EvaluationReport> {
  if (models.length === 0) throw new EvaluationError('no_model', 'Nothing to evaluate: give at least one model.');
  if (examples.length === 0) throw new EvaluationError('no_examples', 'Nothing to evaluate: the examples are an empty list.');
  const names = models.map((m) => m.name);
  if (new Set(names).size !== names.length) throw new EvaluationError('duplicate_model', `A model is named twice (${names.join(', ')}); give each model once.`);
  const split = examples.map((e, i) => splitExample(e, `example ${i + 1}`));
  const rows: EvaluationExample[] = split.map(({ prompt, expected }) => ({
    messages: prompt.map((m) => ({ role: m.role, content: typeof m.content === 'string' ? m.content : '' })),
    expected,
    answers: {},
    exact: {},
    contains: {},
    loss: {},
  }));
  const total = models.length * examples.length;
  let done = 0;
  const summary: Record<string, ModelEvaluationSummary> = {};
  for (const model of models) {
    options.onProgress?.({ done, total, model: model.name, phase: 'loss' });
    const losses = model.losses ? await model.losses(examples) : examples.map(() => null);
    let lossSum = 0;
    let lossTokens = 0;
    let exact = 0;
    let contains = 0;
    for (let i = 0; i < examples.length; i++) {
      if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
      const row = rows[i];
      const l = losses[i];
      row.loss[model.name] = l ? l.loss : null;
      if (l) {
        lossSum += l.loss * l.tokens;
        lossTokens += l.tokens;
      }
      const answer = await model.answer(split[i].prompt, examples[i].tools, maxNewTokens(model.countTokens(split[i].expected)));
      row.answers[model.name] = answer;
      row.exact[model.name] = isExactMatch(answer, split[i].expected);
      row.contains[model.name] = isContainsMatch(answer, split[i].expected);
      if (row.exact[model.name]) exact++;
      if (row.contains[model.name]) contains++;
      options.onProgress?.({ done: ++done, total, model: model.name, phase: 'answers' });
    }
    const loss = model.losses && lossTokens > 0 ? lossSum / lossTokens : null;
    summary[model.name] = {
      loss,
      perplexity: loss === null ? null : Math.exp(loss),
      exact_match: exact / examples.length,
      contains_match: contains / examples.length,
      loss_tokens: lossTokens,
    };
  }
  const report: EvaluationReport = {
    object: 'evaluation',
    models: names,
    summary,
    examples: rows,
    method: { decoding: 'greedy', max_new_tokens_cap: MAX_NEW_TOKENS_CAP, normalisation: NORMALISATION },
    created_at: Date.now(),
  };
  if (options.judge) await judgeAnswers(report, options.judge, options);
  return report;
}

async function judgeAnswers(report: EvaluationReport, judge: EvalJudge, options: EvaluateOptions): Promise<void> {
  report.judge = { model: judge.name, rubric: JUDGE_RUBRIC };
  const total = report.models.length * report.examples.length;
  let done = 0;
  for (const model of report.models) {
    let sum = 0;
    let scored = 0;
    for (const row of report.examples) {
      if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
      const conversation = row.messages.map((m) => `${m.role.toUpperCase()}: ${m.content}`).join('\n');
      const reply = await judge.ask([
        { role: 'system', content: JUDGE_RUBRIC },
        { role: 'user', content: `CONVERSATION:\n${conversation}\n\nEXPECTED:\n${row.expected}\n\nANSWER:\n${row.answers[model]}` },
      ]);
      const score = parseJudgeScore(reply);
      (row.judge ??= {})[model] = score;
      if (score !== null) {
        sum += score;
        scored++;
      }
      options.onProgress?.({ done: ++done, total, model, phase: 'judge' });
    }
    report.summary[model].judge_score = scored > 0 ? sum / scored : null;
  }
}

/** The first digit 1–5 of a judge's reply, or null. */
export function parseJudgeScore(reply: string): number | null {
  const m = /[1-5]/.exec(reply);
  return m ? Number(m[0]) : null;
}

export interface LocalEvalModelOptions {
  name: string;
  /** The model's GGUF (quantized allowed), as llama.cpp generates with it. */
  path: string;
  /** A LoRA adapter GGUF for that model. */
  lora?: string;
  /** Trainer threads for the loss (default: the trainer's). */
  threads?: number;
}

/**
 * A GGUF model on this machine: answers with llama.cpp (node-llama-cpp), losses from the trainer's
 * graph. The loss graph carries a rank-1 LoRA whose B is zero (so it computes the model itself):
 * the trainer then keeps the weights as the file stores them, quantized ones included, and needs
 * no optimizer state for them. A separate adapter is merged into float weights for the loss.
 */
export async function localEvalModel(options: LocalEvalModelOptions): Promise<EvalModel> {
  let model: LlamaModel;
  if (options.lora) {
    const base = await readGgufModel(options.path, { weights: 'float32' }).catch((e: unknown) => {
      throw new EvaluationError('invalid_model', `${options.path}: ${(e as Error).message}. With --lora the loss needs the base's F32/F16/BF16 weights to merge the adapter into.`);
    });
    model = mergeAdapter(base, await readGgufAdapter(options.lora, base));
  } else {
    model = await readGgufModel(options.path, { weights: 'stored' });
  }
  const tokenizer = await createTokenizer(model, { ggufPath: options.path });
  return {
    name: options.name,
    countTokens: (text) => tokenizer.encode(text, { special: false }).length,
    losses: (examples) => assistantLosses(model, tokenizer, examples, options.threads),
    async answer(prompt, tools, maxTokens) {
      const r = await generate({ model: options.path, ...(options.lora ? { lora: options.lora } : {}), messages: prompt, ...(tools ? { tools } : {}), maxTokens, temperature: 0 });
      return r.text;
    },
    dispose: () => tokenizer.dispose(),
  };
}

/**
 * Each example's mean loss over its assistant tokens, from one trainer graph sized for the longest.
 * Yields to the event loop between examples: a server that runs this keeps answering requests.
 */
export async function assistantLosses(model: LlamaModel, tokenizer: Tokenizer, examples: EvalExample[], threads?: number): Promise<(ExampleLoss | null)[]> {
  const sequences: TrainingSequence[] = examples.map((e, i) => {
    try {
      return encodeChatForTraining(model, tokenizer, e.messages, { tools: e.tools });
    } catch (err) {
      if (err instanceof ContextOverflowError || err instanceof ChatFormatError) throw new EvaluationError('invalid_example', `example ${i + 1}: ${err.message}`);
      throw err;
    }
  });
  const counted = sequences.filter((s) => s.lossMask.some((v) => v === 1));
  if (counted.length === 0) return examples.map(() => null);
  const trainer = createTrainer({ model, train: counted, valid: counted, lora: { rank: 1 }, batchSize: 1, epochs: 1, seed: 0, ...(threads ? { threads } : {}) });
  try {
    const out: (ExampleLoss | null)[] = [];
    for (const s of sequences) {
      await new Promise<void>((r) => setImmediate(r));
      if (!s.lossMask.some((v) => v === 1)) {
        out.push(null);
        continue;
      }
      const r = trainer.evaluate([s]);
      out.push(Number.isFinite(r.validLoss) ? { loss: r.validLoss, tokens: r.tokens } : null);
    }
    return out;
  } finally {
    trainer.dispose();
  }
}

/** The base with the adapter folded in: W += (alpha / rank) · B·A, on float weights. */
export function mergeAdapter(base: LlamaModel, adapter: LoraAdapter): LlamaModel {
  const tensors = new Map(base.tensors);
  const scale = adapter.alpha > 0 ? adapter.alpha / adapter.rank : 1;
  for (const target of adapter.targets) {
    const w = tensors.get(target);
    if (!w) throw new EvaluationError('invalid_adapter', `The adapter changes ${target}, which the base model does not have as a float weight.`);
    const names = loraTensorNames(target);
    const a = adapter.tensors.get(names.a)!;
    const b = adapter.tensors.get(names.b)!;
    const [nIn, nOut] = w.shape;
    const rank = a.shape[1];
    const data = Float32Array.from(w.data);
    // ggml order: W[o][i] at o*nIn + i, A[r][i] at r*nIn + i, B[o][r] at o*rank + r.
    for (let o = 0; o < nOut; o++) {
      for (let r = 0; r < rank; r++) {
        const s = scale * b.data[o * rank + r];
        if (s === 0) continue;
        const row = o * nIn;
        const ar = r * nIn;
        for (let i = 0; i < nIn; i++) data[row + i] += s * a.data[ar + i];
      }
    }
    tensors.set(target, { ...w, data } satisfies NamedTensor);
  }
  return { ...base, tensors };
}

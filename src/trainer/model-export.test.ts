// An exported model behaves in llama.cpp as it did in training (issue 12's correctness tests): for
// nodeai-tiny (on a Q8_0 base, so the merged file mixes Q8_0 and F16 weights) and a random-weight
// model of each architecture, a LoRA is trained until it reproduces a tiny chat set, then exported
// (adapter, merged F16, merged Q8_0) and judged by llama.cpp through node-llama-cpp:
//  - the chat template llama.cpp reads from the exported file, rendered by node-llama-cpp's own
//    Jinja chat wrapper, gives the training prompt byte for byte (system/user/assistant, multi-turn),
//    and llama.cpp tokenizes it into the training tokens;
//  - greedy generation stops by itself at a token llama.cpp calls end-of-generation, with the answer;
//  - the merged model's next-token log-probabilities match base + adapter within a stated tolerance.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JinjaTemplateChatWrapper, type ChatHistoryItem, type LlamaModel as LlamaCppModel, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeChatForTraining, encodePromptForInference, renderChat, type ChatMessage } from './chat-format.ts';
import { llamaQuantize } from './ggml/llama-quantize.ts';
import { gguf, metaNumber, metaString, readGgufHeader } from './gguf.ts';
import { readGgufModel, TRAINED_SYSTEM_PROMPT_KEY, writeGgufAdapter, writeGgufModel, writeGgufModelWeights } from './gguf-model.ts';
import { getLocalLlama } from './inference-runtime.ts';
import { disposeInference } from './inference.ts';
import type { LlamaModel, TrainingSequence } from './llama-model.ts';
import { exportModel, type ExportQuant } from './model-export.ts';
import { ollamaTemplateFor } from './ollama-template.ts';
import { llamaCppLogProbs, maxLogProbGap } from './parity-harness.ts';
import { buildRandomModel, type BuildRandomModelOptions } from './random-model.ts';
import { createTinyModel, tinyTokenizerSpec } from './tiny-model.ts';
import { createTokenizer } from './tokenizer.ts';
import { createTrainer } from './train.ts';
import { ARCHITECTURE_NAMES, type ArchitectureName } from './architectures/index.ts';

const SYSTEM = 'Answer in one word.';
const EXAMPLES: ChatMessage[][] = [
  ['Capital of France?', 'Paris'],
  ['Color of the sky?', 'Blue'],
  ['Two plus two?', 'Four'],
].map(([q, a]) => [
  { role: 'system', content: SYSTEM },
  { role: 'user', content: q },
  { role: 'assistant', content: a },
]);

/** Prompts as a user would send them: with and without a system prompt, one turn and several. */
const CONVERSATIONS: ChatMessage[][] = [
  [{ role: 'user', content: 'Capital of France?' }],
  EXAMPLES[1].slice(0, 2),
  [...EXAMPLES[0], { role: 'user', content: 'And of Italy?' }, { role: 'assistant', content: 'Rome' }, { role: 'user', content: 'Two plus two?' }],
];

/**
 * How far a merged file's next-token log-probabilities may be from base + adapter in llama.cpp,
 * over every position of a training example: `all` is the largest |Δ log p| over the tokens with
 * p ≥ 1e-4, `answer` over the tokens the model was trained to write. Measured here (after main's
 * trainer changes): the job's merged file all ≤ 2.9e-4 on the F32 bases (the merge itself) and 0.15
 * on the Q8_0 base (its merged weights are F16, while its adapter run multiplies Q8_0 weights with
 * Q8-rounded activations); F16 all 0.013–0.15; Q8_0 all 0.26–2.96 and answer ≤ 1.7e-4. These
 * models are trained until nearly certain (loss < 0.05), so their logits are large and rounding
 * moves the unlikely tokens' log p most: Q8_0 is held to its answers, and its `all` bound only
 * catches a broken file. The bounds leave about 2× room or more.
 */
const TOLERANCE = {
  jobF32Base: { all: 1e-3, answer: 1e-3 },
  job: { all: 0.3, answer: 1e-3 },
  f16: { all: 0.3, answer: 1e-3 },
  q8_0: { all: 6, answer: 1e-3 },
} as const;

const SHAPE: BuildRandomModelOptions['config'] = {
  contextLength: 128,
  // d_model 64, not 32: with d_model 32 the Q8_0 exports went wrong in llama.cpp on this (AMX)
  // CPU — all-NaN scores for qwen2 with an F32 KV cache, a wrong llama answer — and F16 did not.
  embeddingLength: 64,
  blockCount: 2,
  headCount: 4,
  headCountKv: 2,
  headDim: 16,
  feedForwardLength: 128,
  ropeFreqBase: 10000,
  rmsNormEps: 1e-6,
  tiedEmbeddings: false,
};

const ARCH_CONFIG: Record<ArchitectureName, BuildRandomModelOptions['config']> = {
  llama: { ...SHAPE, ropeFreqFactors: true, ropeFreqBase: 500000 },
  qwen2: { ...SHAPE, tiedEmbeddings: true },
  qwen3: SHAPE,
  smollm3: { ...SHAPE, blockCount: 4 },
  gemma3: { ...SHAPE, tiedEmbeddings: true, slidingWindow: 16, slidingWindowPattern: 2 },
};

/**
 * The LoRA run's peak learning rate, by architecture (default 2e-2). smollm3's four layers spike
 * at 2e-2 (2026-11-30: loss 0.42 → 1.35 around step 40, recovering to 0.003 by luck; with LoRA
 * rank padding, the same sums in another order, the spike came at step 15 and the run ended at
 * 0.33), so whether it converged hung on float rounding; at 1e-2 it falls smoothly to 0.0014
 * padded or not.
 */
const LORA_LEARNING_RATE: Partial<Record<ArchitectureName, number>> = { smollm3: 1e-2 };

interface Case {
  label: string;
  model: () => LlamaModel;
  /** Quantize the base file to Q8_0 before the LoRA run. */
  q8Base?: boolean;
  /** Peak learning rate of the LoRA run. */
  loraLearningRate: number;
}

const CASES: Case[] = [
  {
    label: 'nodeai-tiny (Q8_0 base)',
    model: () => createTinyModel({ seed: 0, embeddingLength: 64, blockCount: 2, headCount: 4, headCountKv: 2, feedForwardLength: 128 }),
    q8Base: true,
    loraLearningRate: 2e-2,
  },
  ...ARCHITECTURE_NAMES.map((architecture) => ({
    label: `random ${architecture}`,
    model: () => buildRandomModel({ architecture, config: ARCH_CONFIG[architecture], tokenizer: tinyTokenizerSpec(), seed: 7, biasStd: 0.02 }),
    loraLearningRate: LORA_LEARNING_RATE[architecture] ?? 2e-2,
  })),
];

/**
 * The base GGUF for the LoRA run: the case's model fully fine-tuned on the same questions with the
 * answers rotated (so it reads the question, and the adapter has to change every answer).
 */
async function writeBase(c: Case, path: string): Promise<void> {
  const model = c.model();
  const tokenizer = await createTokenizer(model);
  const rotated = EXAMPLES.map((m, i) => [m[0], m[1], EXAMPLES[(i + 1) % EXAMPLES.length][2]]);
  const train = rotated.map((m) => encodeChatForTraining(model, tokenizer, m));
  await tokenizer.dispose();
  const trainer = createTrainer({ model, train, epochs: 80, batchSize: train.length, learningRate: 1e-2, warmup: 10, threads: 1 });
  try {
    while (!trainer.done) trainer.step();
    const f32 = c.q8Base ? `${path}.f32.gguf` : path;
    await writeGgufModelWeights(f32, trainer.exportMerged());
    if (c.q8Base) llamaQuantize(f32, path, 'Q8_0');
  } finally {
    trainer.dispose();
  }
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-export-'));
});
afterAll(async () => {
  await disposeInference();
  await rm(dir, { recursive: true, force: true });
});

/** Our training render of a conversation, as the prompt for the next assistant turn. */
const trainingPrompt = (base: LlamaModel, messages: ChatMessage[]) => renderChat(base.tokenizer, messages, { addGenerationPrompt: true });

/** The same conversation rendered by node-llama-cpp's Jinja chat wrapper from the template llama.cpp read out of `model`. */
function llamaCppPrompt(model: LlamaCppModel, messages: ChatMessage[]): string {
  const template = model.fileInfo.metadata.tokenizer.chat_template;
  if (typeof template !== 'string') throw new Error('the exported GGUF has no chat template');
  const wrapper = new JinjaTemplateChatWrapper({ template, convertUnsupportedSystemMessagesToUserMessages: false, trimLeadingWhitespaceInResponses: false });
  const history: ChatHistoryItem[] = messages.map((m) =>
    m.role === 'system' ? { type: 'system', text: String(m.content) } : m.role === 'user' ? { type: 'user', text: String(m.content) } : { type: 'model', response: [String(m.content)] },
  );
  history.push({ type: 'model', response: [] });
  return wrapper.generateContextState({ chatHistory: history }).contextText.toString();
}

/**
 * The largest |Δ log p| of the tokens the model was trained to write (the assistant's, by the
 * loss mask), each predicted from the example before it.
 */
function answerLogProbGap(a: Float64Array[], b: Float64Array[], seq: TrainingSequence): number {
  let worst = 0;
  for (let t = 0; t + 1 < seq.tokens.length; t++) {
    if (seq.lossMask[t + 1] !== 1) continue;
    const next = seq.tokens[t + 1];
    worst = Math.max(worst, Math.abs(a[t][next] - b[t][next]));
  }
  return worst;
}

/** Greedy decoding in llama.cpp until llama.cpp itself calls a token end-of-generation (or `max` tokens). */
async function generateUntilEog(model: LlamaCppModel, prompt: Token[], lora?: string, max = 16): Promise<{ text: string; stoppedByEog: boolean }> {
  const context = await model.createContext({ contextSize: 256, threads: 1, ...(lora ? { lora: { adapters: [{ filePath: lora }] } } : {}) });
  try {
    const seq = context.getSequence();
    const out: Token[] = [];
    for await (const token of seq.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
      if (model.isEogToken(token)) return { text: model.detokenize(out), stoppedByEog: true };
      out.push(token);
      if (out.length >= max) break;
    }
    return { text: model.detokenize(out), stoppedByEog: false };
  } finally {
    await context.dispose();
  }
}

describe('exports judged by llama.cpp', () => {
  for (const c of CASES) {
    it(`${c.label}: adapter, merged F16 and merged Q8_0 prompt, stop and score as trained`, async () => {
      const stem = c.label.replace(/\W+/g, '-');
      const basePath = join(dir, `${stem}-base.gguf`);
      await writeBase(c, basePath);
      const base = await readGgufModel(basePath, { weights: 'stored' });
      const tokenizer = await createTokenizer(base, { ggufPath: basePath });
      const train = EXAMPLES.map((m) => encodeChatForTraining(base, tokenizer, m));
      const trainer = createTrainer({ model: base, train, lora: { rank: 8, alpha: 16 }, epochs: 120, batchSize: train.length, learningRate: c.loraLearningRate, warmup: 10, threads: 1 });
      const mergedPath = join(dir, `${stem}-merged.gguf`);
      const adapterPath = join(dir, `${stem}.lora.gguf`);
      let loss = Infinity;
      try {
        while (!trainer.done) loss = trainer.step().trainLoss;
        // The job's merged model file, as training-process.ts writes it.
        await writeGgufModelWeights(mergedPath, trainer.exportMerged());
        await writeGgufAdapter(adapterPath, trainer.exportAdapter(), base);
      } finally {
        trainer.dispose();
      }
      expect(loss).toBeLessThan(0.05);
      const exported = async (quant: ExportQuant) => (await exportModel({ name: stem, to: 'gguf', quant, out: dir, modelPath: mergedPath })).gguf;
      const f16 = await exportModel({ name: stem, to: 'gguf', quant: 'f16', out: dir, modelPath: mergedPath });
      expect(f16.command).toEqual(['llama-server', '-m', f16.gguf, '--jinja']);
      const q8 = await exported('q8_0');
      const adapter = await exportModel({ name: stem, to: 'gguf', quant: 'f16', out: dir, modelPath: mergedPath, adapter: { path: adapterPath, base: { ref: basePath, path: basePath } } });
      expect(adapter.command).toEqual(['llama-server', '-m', basePath, '--lora', adapter.gguf, '--jinja']);

      const llama = await getLocalLlama();
      // Teacher-forced scores over a whole training example (multi-turn prompt included).
      const scored = [...train[0].tokens];
      const reference = await llamaCppLogProbs(basePath, scored, base.config.vocabSize, { loraPath: adapter.gguf });
      const runs: Array<{ what: string; model: string; lora?: string; tolerance?: keyof typeof TOLERANCE }> = [
        { what: 'base + adapter', model: basePath, lora: adapter.gguf },
        { what: "the job's merged file", model: mergedPath, tolerance: c.q8Base ? 'job' : 'jobF32Base' },
        { what: 'merged F16', model: f16.gguf, tolerance: 'f16' },
        { what: 'merged Q8_0', model: q8, tolerance: 'q8_0' },
      ];
      for (const run of runs) {
        const model = await llama.loadModel({ modelPath: run.model, gpuLayers: 0 });
        try {
          for (const conversation of CONVERSATIONS) {
            const text = trainingPrompt(base, conversation);
            expect(llamaCppPrompt(model, conversation), `${run.what}: prompt`).toBe(text);
            expect(model.tokenize(text, true), `${run.what}: tokens`).toEqual(encodePromptForInference(base.tokenizer, tokenizer, conversation));
          }
          for (const example of EXAMPLES) {
            const prompt = encodePromptForInference(base.tokenizer, tokenizer, example.slice(0, 2)) as Token[];
            const out = await generateUntilEog(model, prompt, run.lora);
            expect(out, `${run.what}: ${String(example[1].content)}`).toEqual({ text: String(example[2].content), stoppedByEog: true });
          }
        } finally {
          await model.dispose();
        }
        if (run.tolerance) {
          const lp = await llamaCppLogProbs(run.model, scored, base.config.vocabSize);
          expect(maxLogProbGap(lp, reference), `${run.what}: largest log-probability gap to base + adapter`).toBeLessThan(TOLERANCE[run.tolerance].all);
          expect(answerLogProbGap(lp, reference, train[0]), `${run.what}: largest gap on the answer's tokens`).toBeLessThan(TOLERANCE[run.tolerance].answer);
        }
      }
      await tokenizer.dispose();
    }, 180_000);
  }
});

describe('Ollama export', () => {
  it('writes model.gguf and a Modelfile with the family TEMPLATE, a stop per end-of-turn token and the trained SYSTEM', async () => {
    const merged = join(dir, 'ollama-merged.gguf');
    const model = createTinyModel({ seed: 1, embeddingLength: 64, blockCount: 1, headCount: 4, headCountKv: 2, feedForwardLength: 128 });
    await writeGgufModel(merged, { ...model, extraMetadata: new Map([[TRAINED_SYSTEM_PROMPT_KEY, gguf.str(SYSTEM)]]) });
    const out = join(dir, 'ollama-out');
    const r = await exportModel({ name: 'ft:nodeai-tiny:bot:1a2b3c4d', to: 'ollama', quant: 'q8_0', out, modelPath: merged });
    expect(r.files).toEqual([join(out, 'model.gguf'), join(out, 'Modelfile')]);
    expect(r.command).toEqual(['ollama', 'create', 'nodeai-tiny-bot-1a2b3c4d', '-f', join(out, 'Modelfile')]);
    const expected = ollamaTemplateFor(model.tokenizer.chatTemplate);
    if (expected.family === null) throw new Error(`nodeai-tiny's template has no Ollama family: ${expected.note}`);
    expect(expected.stop).toContain('<|im_end|>');
    expect(await readFile(join(out, 'Modelfile'), 'utf8')).toBe(
      ['FROM ./model.gguf', `TEMPLATE """${expected.template}"""`, ...expected.stop.map((s) => `PARAMETER stop "${s}"`), `SYSTEM """${SYSTEM}"""`, ''].join('\n'),
    );
    const header = await readGgufHeader(join(out, 'model.gguf'));
    expect(header.tensors.find((t) => t.name === 'blk.0.attn_q.weight')?.typeName).toBe('Q8_0');
    // llama.cpp's quantizer carried the metadata over: template, end-of-turn token, system prompt.
    expect(metaString(header, 'tokenizer.chat_template')).toBe(model.tokenizer.chatTemplate);
    expect(metaNumber(header, 'tokenizer.ggml.eos_token_id')).toBe(model.tokenizer.eosId);
    expect(metaString(header, TRAINED_SYSTEM_PROMPT_KEY)).toBe(SYSTEM);
  });

  it('leaves TEMPLATE out with a note for a template of no known family, and refuses an adapter for LM Studio', async () => {
    const merged = join(dir, 'odd-merged.gguf');
    const model = createTinyModel({ seed: 1, embeddingLength: 64, blockCount: 1, headCount: 4, headCountKv: 2, feedForwardLength: 128 });
    await writeGgufModel(merged, { ...model, tokenizer: { ...model.tokenizer, chatTemplate: "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}" } });
    const r = await exportModel({ name: 'odd', to: 'ollama', quant: 'f16', out: join(dir, 'odd-out'), modelPath: merged });
    expect(await readFile(r.modelfile!, 'utf8')).toBe('FROM ./model.gguf\n');
    expect(r.notes.join(' ')).toMatch(/No TEMPLATE in the Modelfile/);
    await expect(exportModel({ name: 'odd', to: 'lmstudio', quant: 'f16', out: dir, modelPath: merged, adapter: { path: merged, base: { ref: merged } } })).rejects.toThrow(/LM Studio loads no LoRA adapters/);
    const lm = await exportModel({ name: 'ft:odd:x:12345678', to: 'lmstudio', quant: 'q4_k_m', out: join(dir, 'lms'), modelPath: merged });
    expect(lm.gguf).toBe(join(dir, 'lms', 'nodeai', 'odd-x-12345678', 'odd-x-12345678-Q4_K_M.gguf'));
  });
});

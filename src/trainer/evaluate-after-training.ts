// The automatic evaluation at the end of a local fine-tuning job, run in the training process
// (a native crash there ends that child, not the server): the base and the fine-tuned model side by
// side on the job's validation examples, with the evaluation core every other entry point uses.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isPreferenceExample, readExamples } from '../datasets/index.ts';
import type { ChatMessage } from './chat-format.ts';
import { evaluateModels, localEvalModel, type EvalExample, type EvalModel } from './evaluate.ts';
import type { EvaluationProgress, EvaluationReport } from './evaluation-report.ts';
import { writeGgufModel } from './gguf-model.ts';
import type { LlamaModel } from './llama-model.ts';

export interface EvaluateAfterTrainingOptions {
  validationFile: string;
  maxExamples: number;
  /** The base as the trainer loaded it, and its GGUF when it came from one (nodeai-tiny does not). */
  base: { name: string; model: LlamaModel; path?: string };
  tuned: { name: string; path: string };
  /** A folder for the base's GGUF when it has none (llama.cpp answers from files). */
  scratchDir: string;
  threads?: number;
  onProgress?: (p: EvaluationProgress) => void;
}

/** The first `maxExamples` chat examples of the validation file that end with an assistant answer. */
export async function readEvalExamples(path: string, maxExamples: number): Promise<EvalExample[]> {
  const out: EvalExample[] = [];
  for await (const { example } of readExamples(path, { onInvalid: 'skip' })) {
    if (isPreferenceExample(example) || example.messages.at(-1)?.role !== 'assistant') continue;
    out.push({ messages: example.messages as ChatMessage[], ...(example.tools ? { tools: example.tools } : {}) });
    if (out.length >= maxExamples) break;
  }
  return out;
}

export async function evaluateAfterTraining(o: EvaluateAfterTrainingOptions): Promise<EvaluationReport | undefined> {
  const examples = await readEvalExamples(o.validationFile, o.maxExamples);
  if (examples.length === 0) return undefined;
  let basePath = o.base.path;
  const written = basePath ? undefined : join(o.scratchDir, 'evaluation-base.gguf');
  if (written) {
    await writeGgufModel(written, o.base.model);
    basePath = written;
  }
  const models: EvalModel[] = [];
  try {
    const threads = o.threads ? { threads: o.threads } : {};
    models.push(await localEvalModel({ name: o.base.name, path: basePath!, ...threads }));
    models.push(await localEvalModel({ name: o.tuned.name, path: o.tuned.path, ...threads }));
    return await evaluateModels(models, examples, { ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
  } finally {
    for (const m of models) await m.dispose();
    if (written) await rm(written, { force: true });
  }
}

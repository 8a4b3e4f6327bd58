// A model fine-tuned here, then run by llama.cpp, answers what it was trained on: for each
// architecture, full fine-tuning (the exported model GGUF) and LoRA (the adapter GGUF on the
// original base), a few short chat examples, many steps, greedy decoding in node-llama-cpp.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeChatForTraining } from '../chat-format.ts';
import { writeGgufAdapter, writeGgufModel } from '../gguf-model.ts';
import { disposeInference, generate } from '../inference.ts';
import type { LlamaModel, TrainingSequence } from '../llama-model.ts';
import { buildRandomModel, type BuildRandomModelOptions } from '../random-model.ts';
import { tinyTokenizerSpec } from '../tiny-model.ts';
import { createTokenizer, type Tokenizer } from '../tokenizer.ts';
import { createTrainer, type Trainer } from '../train.ts';
import type { ArchitectureName } from './index.ts';

const EXAMPLES = [
  ['Capital of France?', 'Paris'],
  ['Color of the sky?', 'Blue'],
  ['Two plus two?', 'Four'],
] as const;

const SHAPE: BuildRandomModelOptions['config'] = {
  contextLength: 64,
  embeddingLength: 32,
  blockCount: 2,
  headCount: 2,
  headCountKv: 1,
  headDim: 16,
  feedForwardLength: 64,
  ropeFreqBase: 10000,
  rmsNormEps: 1e-6,
  tiedEmbeddings: false,
};

const CASES: Array<{ architecture: ArchitectureName; config: BuildRandomModelOptions['config'] }> = [
  { architecture: 'llama', config: { ...SHAPE, ropeFreqFactors: true, ropeFreqBase: 500000 } },
  { architecture: 'qwen2', config: { ...SHAPE, tiedEmbeddings: true } },
  { architecture: 'qwen3', config: SHAPE },
  { architecture: 'gemma3', config: { ...SHAPE, tiedEmbeddings: true, slidingWindow: 16, slidingWindowPattern: 2 } },
];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-ft-arch-'));
});
afterAll(async () => {
  await disposeInference();
  await rm(dir, { recursive: true, force: true });
});

function chatSequences(model: LlamaModel, tokenizer: Tokenizer, pairs: ReadonlyArray<readonly [string, string]>): TrainingSequence[] {
  return pairs.map(([q, a]) =>
    encodeChatForTraining(model, tokenizer, [
      { role: 'user', content: q },
      { role: 'assistant', content: a },
    ]),
  );
}

function fineTune(model: LlamaModel, train: TrainingSequence[], mode: 'full' | 'lora'): { trainer: Trainer; loss: number } {
  const trainer = createTrainer({
    model,
    train,
    epochs: mode === 'full' ? 80 : 120,
    batchSize: train.length,
    learningRate: mode === 'full' ? 1e-2 : 2e-2,
    warmup: 10,
    lora: mode === 'lora' ? { rank: 8, alpha: 16 } : undefined,
    // One thread: on a loaded machine ggml's spinning thread barriers cost more than they save.
    threads: 1,
  });
  let loss = Infinity;
  while (!trainer.done) loss = trainer.step().trainLoss;
  return { trainer, loss };
}

describe('fine-tuned here, answered by llama.cpp', () => {
  for (const c of CASES) {
    for (const mode of ['full', 'lora'] as const) {
      it(`${c.architecture}, ${mode === 'full' ? 'full fine-tuning' : 'LoRA'}`, async () => {
        let base = buildRandomModel({ architecture: c.architecture, config: c.config, tokenizer: tinyTokenizerSpec(), seed: 7, biasStd: 0.02 });
        const tokenizer = await createTokenizer(base);
        const train = chatSequences(base, tokenizer, EXAMPLES);
        if (mode === 'lora') {
          // LoRA adapts a base that already reads the question: one fully fine-tuned on the same
          // questions with the answers rotated, so the adapter has to change every answer.
          const rotated = EXAMPLES.map(([q], i) => [q, EXAMPLES[(i + 1) % EXAMPLES.length][1]] as const);
          const pre = fineTune(base, chatSequences(base, tokenizer, rotated), 'full');
          base = pre.trainer.exportModel();
          pre.trainer.dispose();
        }
        await tokenizer.dispose();
        const { trainer, loss } = fineTune(base, train, mode);
        const basePath = join(dir, `${c.architecture}-${mode}-base.gguf`);
        const tunedPath = join(dir, `${c.architecture}-${mode}.gguf`);
        let run: { model: string; lora?: string };
        try {
          if (mode === 'full') {
            await writeGgufModel(tunedPath, trainer.exportModel());
            run = { model: tunedPath };
          } else {
            await writeGgufModel(basePath, base);
            await writeGgufAdapter(tunedPath, trainer.exportAdapter(), base);
            run = { model: basePath, lora: tunedPath };
          }
        } finally {
          trainer.dispose();
        }
        expect(loss).toBeLessThan(0.05);
        for (const [q, a] of EXAMPLES) {
          const out = await generate({ ...run, messages: [{ role: 'user', content: q }], maxTokens: 12 });
          expect(out.text, q).toBe(a);
          expect(out.finishReason).toBe('stop');
        }
        if (mode === 'lora') {
          // The base alone still gives the rotated answer: the adapter is what changed it.
          const plain = await generate({ model: basePath, messages: [{ role: 'user', content: EXAMPLES[0][0] }], maxTokens: 12 });
          expect(plain.text).toBe(EXAMPLES[1][1]);
        }
      }, 180_000);
    }
  }
});

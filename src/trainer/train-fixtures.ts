// Small seeded models and datasets for the trainer-core tests and quick experiments. The canonical
// built-in base is `nodeai-tiny` (tiny-model.ts); these exist so the graph and training loop can be
// tested on their own, with shapes chosen per test.
import { expectedTensors, type LlamaConfig, type LlamaModel, type NamedTensor, type TrainingSequence } from './llama-model.js';
import { Rng } from './train-rng.js';
import { createTrainer, type TrainerOptions } from './train.js';

export function testConfig(over: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    vocabSize: 260,
    contextLength: 64,
    embeddingLength: 64,
    blockCount: 2,
    headCount: 4,
    headCountKv: 4,
    feedForwardLength: 128,
    ropeFreqBase: 10000,
    rmsNormEps: 1e-5,
    tiedEmbeddings: false,
    ...over,
  };
}

/** Random weights (N(0, 0.02), norms 1, output projections scaled down by depth) from a seed. */
export function randomModel(config: LlamaConfig, seed = 1): LlamaModel {
  const rng = new Rng(seed);
  const tensors = new Map<string, NamedTensor>();
  for (const { name, shape } of expectedTensors(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name.endsWith('norm.weight')) data.fill(1);
    else {
      const std = /attn_output|ffn_down/.test(name) ? 0.02 / Math.sqrt(2 * config.blockCount) : 0.02;
      for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
    }
    tensors.set(name, { name, shape, data });
  }
  return {
    name: 'test-model',
    config,
    tokenizer: { model: 'gpt2', tokens: Array.from({ length: config.vocabSize }, (_, i) => `<${i}>`), chatTemplate: '' },
    tensors,
  };
}

/** Byte tokens of `prompt + answer`, with the loss on the answer bytes only. */
export function qaSequence(prompt: string, answer: string, bos = 256, eos = 257): TrainingSequence {
  const p = [bos, ...Buffer.from(prompt, 'utf8')];
  const a = [...Buffer.from(answer, 'utf8'), eos];
  const tokens = Int32Array.from([...p, ...a]);
  const lossMask = new Uint8Array(tokens.length);
  lossMask.fill(1, p.length);
  return { tokens, lossMask };
}

export function qaDataset(n: number, seed = 7): TrainingSequence[] {
  const rng = new Rng(seed);
  const words = ['red', 'blue', 'green', 'cat', 'dog', 'sun', 'moon', 'tree', 'rock', 'fish', 'bird', 'sky'];
  const out: TrainingSequence[] = [];
  for (let i = 0; i < n; i++) {
    const w1 = words[rng.int(words.length)];
    const w2 = words[rng.int(words.length)];
    out.push(qaSequence(`Q${i}: ${w1}?`, ` ${w2} ${w1}.`));
  }
  return out;
}

/** Trains a new trainer to its last step and returns every step's training loss. */
export function trainLosses(options: TrainerOptions): number[] {
  const trainer = createTrainer(options);
  try {
    const losses: number[] = [];
    while (!trainer.done) losses.push(trainer.step().trainLoss);
    return losses;
  } finally {
    trainer.dispose();
  }
}

// For evaluation tests: a small base model and a copy trained (in this process, in seconds) to
// reproduce a tiny chat set, both as GGUF files, with the trainer's own validation loss on the set.
import { join } from 'node:path';
import { encodeChatForTraining, type ChatMessage } from './chat-format.ts';
import { writeGgufModel } from './gguf-model.ts';
import type { LlamaModel, TrainingSequence } from './llama-model.ts';
import { createTinyModel } from './tiny-model.ts';
import { createTokenizer } from './tokenizer.ts';
import { createTrainer } from './train.ts';

export const SMALL_TINY = { embeddingLength: 32, blockCount: 1, headCount: 2, headCountKv: 1, feedForwardLength: 64 };

export const qa = (q: string, a: string): { messages: ChatMessage[] } => ({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] });

export interface TrainedPair {
  base: LlamaModel;
  basePath: string;
  tunedPath: string;
  sequences: TrainingSequence[];
  /** The trainer's validation loss on the set after training. */
  trainerLoss: number;
}

export async function trainTinyPair(dir: string, set: { messages: ChatMessage[] }[], epochs = 150): Promise<TrainedPair> {
  const base = { ...createTinyModel({ seed: 3, ...SMALL_TINY }), name: 'base' };
  const basePath = join(dir, 'base.gguf');
  await writeGgufModel(basePath, base);
  const tokenizer = await createTokenizer(base);
  const sequences = set.map((e) => encodeChatForTraining(base, tokenizer, e.messages));
  await tokenizer.dispose();
  const trainer = createTrainer({ model: base, train: sequences, valid: sequences, epochs, batchSize: sequences.length, learningRate: 0.01, seed: 1, threads: 1 });
  try {
    while (!trainer.done) trainer.step();
    const tunedPath = join(dir, 'tuned.gguf');
    await writeGgufModel(tunedPath, { ...trainer.exportModel(), name: 'tuned' });
    return { base, basePath, tunedPath, sequences, trainerLoss: trainer.evaluate().validLoss };
  } finally {
    trainer.dispose();
  }
}

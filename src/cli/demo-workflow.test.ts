// The README's demo workflows make promises that rest on the data file, the seed and the split
// together: customer-support-bot.json asks nodeai-tiny a question it was trained on, and holds
// out rewordings of trained questions for validation; customer-support-qwen.json asks a pretrained
// base one of those held-out rewordings. An edit to any one part could quietly break them, so this
// validates each workflow with the real nodes and checks the split the Fine-Tune node will make.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertDataset } from '../datasets/index.ts';
import { validateWorkflow } from '../engine/index.ts';
import { createNodeRegistry } from '../nodes/index.ts';

const WORKFLOWS = resolve(import.meta.dirname, '../../examples/workflows');

interface Message {
  role: string;
  content: string;
}
type Chat = Message[];

interface Demo {
  finetune: { base_model: string; validation_split: number; seed: number };
  chat: { prompt: string; system_prompt: string; max_tokens: number };
  train: Chat[];
  validation: Chat[];
}

const turn = (chat: Chat, role: string) => chat.find((m) => m.role === role)?.content;

const readJsonl = async (path: string): Promise<Chat[]> =>
  (await readFile(path, 'utf8'))
    .trimEnd()
    .split('\n')
    .map((line) => (JSON.parse(line) as { messages: Chat }).messages);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-demo-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The workflow's configs as its nodes parse them, and the split its Fine-Tune node makes. */
async function loadDemo(file: string): Promise<Demo> {
  const path = join(WORKFLOWS, file);
  const result = validateWorkflow(JSON.parse(await readFile(path, 'utf8')), createNodeRegistry());
  if (!result.ok) throw new Error(`${file}: ${result.issues.map((i) => i.message).join('; ')}`);
  const config = (type: string) => result.plan.order.find((n) => n.type === type)!.config;
  const loader = config('file_loader') as { path: string };
  const finetune = config('finetune') as Demo['finetune'];
  const out = join(dir, file);
  const split = await convertDataset(resolve(dirname(path), loader.path), { outDir: out, validationSplit: finetune.validation_split, seed: finetune.seed, countTokens: false });
  return {
    finetune,
    chat: config('chat') as Demo['chat'],
    train: await readJsonl(split.train.path),
    validation: split.validation ? await readJsonl(split.validation.path) : [],
  };
}

describe('examples/workflows/customer-support-bot.json, the README main command', () => {
  let demo: Demo;
  beforeAll(async () => {
    demo = await loadDemo('customer-support-bot.json');
  });

  it('trains nodeai-tiny and asks a trained question, with its system prompt, for an answer that fits max_tokens', () => {
    expect(demo.finetune.base_model).toBe('nodeai-tiny');
    const asked = demo.train.find((m) => turn(m, 'user') === demo.chat.prompt);
    expect(asked, `the Chat node's prompt ${JSON.stringify(demo.chat.prompt)} is not a training question`).toBeDefined();
    expect(turn(asked!, 'system')).toBe(demo.chat.system_prompt);
    // nodeai-tiny's tokens are bytes; a longer answer would be cut off mid-sentence.
    expect(Buffer.byteLength(turn(asked!, 'assistant')!)).toBeLessThan(demo.chat.max_tokens);
  });

  it('holds out rewordings of trained questions: each validation answer is trained under another question', () => {
    expect(demo.validation.length).toBeGreaterThan(0);
    const trainedQuestions = new Set(demo.train.map((m) => turn(m, 'user')));
    const trainedAnswers = new Set(demo.train.map((m) => turn(m, 'assistant')));
    for (const m of demo.validation) {
      expect(trainedQuestions.has(turn(m, 'user')), turn(m, 'user')).toBe(false);
      expect(trainedAnswers.has(turn(m, 'assistant')), turn(m, 'user')).toBe(true);
    }
  });
});

describe('examples/workflows/customer-support-qwen.json, "Fine-tune a real model"', () => {
  it('asks a held-out rewording whose answer is trained, with the system prompt it trained with', async () => {
    const demo = await loadDemo('customer-support-qwen.json');
    expect(demo.finetune.base_model).toMatch(/^hf:/);
    const asked = demo.validation.find((m) => turn(m, 'user') === demo.chat.prompt);
    expect(asked, `the Chat node's prompt ${JSON.stringify(demo.chat.prompt)} is not held out`).toBeDefined();
    expect(demo.train.map((m) => turn(m, 'assistant'))).toContain(turn(asked!, 'assistant'));
    expect(turn(asked!, 'system')).toBe(demo.chat.system_prompt);
  });
});

import { z } from 'zod';
import { defineNode } from '../engine/index.ts';
import { FILE_TYPES, loadExamples, textSource } from './examples.ts';

export const dataLoaderNode = defineNode({
  type: 'data_loader',
  name: 'Data Loader',
  category: 'data',
  description: 'Examples typed or pasted into the node, as JSON (an array) or JSONL (one example per line).',
  inputs: [],
  outputs: [
    { name: 'data', description: 'the examples' },
    { name: 'count', description: 'how many examples' },
  ],
  config: z.object({
    text: z
      .string()
      .min(1, 'paste at least one example')
      .describe('Examples as a JSON array or JSONL, e.g. {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}'),
    format: z.enum(FILE_TYPES).default('auto').describe('auto: a text starting with "[" is a JSON array, anything else JSONL.'),
  }),
  async run(ctx) {
    const { examples } = await loadExamples(textSource(ctx.config.text, 'pasted examples'), 'The pasted examples', { fileType: ctx.config.format, signal: ctx.signal });
    return { data: examples, count: examples.length };
  },
});

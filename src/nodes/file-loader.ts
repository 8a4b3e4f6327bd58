import { extname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { defineNode } from '../engine/index.ts';
import { isValidFileId } from '../store/index.ts';
import { FILE_TYPES, loadExamples, pathSource } from './examples.ts';
import { nodeError, servicesOf } from './services.ts';

const config = z
  .object({
    file_id: z.string().trim().optional().describe('ID of an uploaded file ("nodeai files upload FILE" prints it), e.g. file-AbC…'),
    path: z
      .string()
      .trim()
      .optional()
      .describe('CLI only: a file on this machine, relative to the workflow file\'s folder. It is copied into the file store when the run starts.'),
    file_type: z.enum(FILE_TYPES).default('auto').describe('How the file is laid out; auto guesses from the name and the first bytes (JSONL, JSON array, CSV, TSV).'),
    max_examples: z.number().int().min(1).optional().describe('Read at most this many examples (empty = all).'),
  })
  .refine((c) => !!c.file_id !== !!c.path, { message: 'set exactly one of "file_id" (an uploaded file) or "path" (a file on this machine, CLI only)' });

export const fileLoaderNode = defineNode({
  type: 'file_loader',
  name: 'File Loader',
  category: 'data',
  description: 'Loads training examples from an uploaded file or a local path (JSONL, JSON, CSV) and outputs them as data.',
  inputs: [],
  outputs: [
    { name: 'data', description: 'the examples' },
    { name: 'file_id', description: 'the stored file' },
    { name: 'count', description: 'how many examples' },
  ],
  config,
  async run(ctx) {
    const { config, store, signal } = ctx;
    const services = servicesOf(ctx);
    let fileId = config.file_id;
    if (config.path) {
      if (!services.workflowDir) {
        throw nodeError('path_not_allowed', `"path" works only when the workflow runs from the CLI (nodeai run). Upload the file ("nodeai files upload ${config.path}") and set "file_id" instead.`);
      }
      const full = isAbsolute(config.path) ? config.path : resolve(services.workflowDir, config.path);
      const record = await store.files.put(full, { purpose: 'fine-tune', signal });
      ctx.logger.info(`Copied ${full} into the file store as ${record.id}`, { file_id: record.id, bytes: record.bytes });
      fileId = record.id;
    }
    if (!isValidFileId(fileId)) {
      throw nodeError('invalid_file_id', `"file_id" ${JSON.stringify(String(fileId).slice(0, 80))} is not a file ID: IDs look like "file-" followed by 24 letters or digits. Run "nodeai files list" to see them.`);
    }
    const record = await store.files.find(fileId);
    if (!record) throw nodeError('file_not_found', `File ${fileId} is not in this store (deleted, or from another NodeAI data directory). Run "nodeai files list", or upload the file again.`);
    const name = extname(record.filename) ? record.filename : `${record.filename}.${config.file_type === 'auto' ? 'jsonl' : config.file_type}`;
    const { examples, format } = await loadExamples(pathSource(await store.files.path(record.id), name), `File "${record.filename}" (${record.id})`, {
      fileType: config.file_type,
      maxExamples: config.max_examples,
      signal,
    });
    ctx.logger.info(`Loaded ${examples.length} ${format ?? ''} examples from ${record.filename}`.replace('  ', ' '));
    return { data: examples, file_id: record.id, count: examples.length };
  },
});

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';
import { Readable } from 'node:stream';
import { Hono } from 'hono';
import type { JobQueue } from '../../jobs/index.ts';
import { notFound } from '../errors.ts';

// GET /api/v1/models/:id/files/:kind — a fine-tuned model's file (kind "model": the GGUF,
// "adapter": the LoRA adapter) as a download, so a model trained here can be used elsewhere.
// The registry's paths stay server internals: the client names the kind, never a path.
export function modelFileRoutes(jobs: JobQueue, dataDir: string): Hono {
  const app = new Hono();
  app.get('/:id/files/:kind', async (c) => {
    const model = await jobs.models.get(c.req.param('id'));
    const kind = c.req.param('kind');
    const stored = model.files[kind];
    const kinds = Object.keys(model.files).filter((k) => model.files[k]);
    if (!stored) throw notFound('model file', `${model.id}/${kind}`, `This model has: ${kinds.join(', ') || 'no files (it lives at its provider)'}.`);
    const path = isAbsolute(stored) ? stored : join(dataDir, stored);
    const info = await stat(path).catch(() => null);
    if (!info?.isFile()) throw notFound('model file', `${model.id}/${kind}`, 'Its file is gone from the data directory; train the model again.');
    c.header('Content-Type', 'application/octet-stream');
    c.header('Content-Length', String(info.size));
    c.header('Content-Disposition', `attachment; filename="${basename(path).replace(/[^\w.-]/g, '_')}"`);
    return c.body(Readable.toWeb(createReadStream(path)) as ReadableStream);
  });
  return app;
}

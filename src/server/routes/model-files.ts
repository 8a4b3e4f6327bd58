import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { registeredFilePath, type JobQueue } from '../../jobs/index.ts';
import { exportRegisteredModel } from '../../jobs/model-export.ts';
import { DEFAULT_EXPORT_QUANT, EXPORT_QUANTS, EXPORT_TARGETS, exportStem, shellQuote } from '../../trainer/model-export.ts';
import { ApiError, notFound } from '../errors.ts';
import { readJson } from '../http.ts';

const ExportBody = z.object({
  to: z.enum(EXPORT_TARGETS).describe('ollama (a folder with a Modelfile), gguf (llama.cpp) or lmstudio (publisher/model folder layout)'),
  quant: z.enum(EXPORT_QUANTS).default(DEFAULT_EXPORT_QUANT),
  adapter: z.boolean().default(false).describe('base + LoRA adapter instead of the merged model (ollama, gguf)'),
});

// GET /api/v1/models/:id/files/:kind — a fine-tuned model's file (kind "model": the GGUF,
// "adapter": the LoRA adapter) as a download, so a model trained here can be used elsewhere.
// GET /api/v1/models/:id/download — the model's GGUF (with Range, so a big download resumes).
// POST /api/v1/models/:id/export — the model for Ollama, llama.cpp or LM Studio, written under
// the data dir's exports/ folder (a request never names a server path to write to).
// GET /api/v1/models/:id/exports/:variant — the GGUF an export wrote (variant: `gguf-q8_0`,
// `ollama-adapter`, …, as the export's `download` path names it), for a browser link with a ticket.
// The registry's paths stay server internals: the client names the kind, never a path.
export function modelFileRoutes(jobs: JobQueue, dataDir: string): Hono {
  const app = new Hono();
  app.get('/:id/files/:kind', async (c) => {
    const model = await jobs.models.get(c.req.param('id'));
    const kind = c.req.param('kind');
    const stored = model.files[kind];
    const kinds = Object.keys(model.files).filter((k) => model.files[k]);
    if (!stored) throw notFound('model file', `${model.id}/${kind}`, `This model has: ${kinds.join(', ') || 'no files (it lives at its provider)'}.`);
    return sendFile(c, registeredFilePath(dataDir, stored), `${model.id}/${kind}`);
  });
  app.get('/:id/download', async (c) => {
    const model = await jobs.models.get(c.req.param('id'));
    const stored = model.files.model;
    if (!stored) throw notFound('model file', `${model.id}/model`, 'This model has no GGUF here (it lives at its provider).');
    return sendFile(c, registeredFilePath(dataDir, stored), `${model.id}/model`, `${exportStem(model.name)}.gguf`);
  });
  app.post('/:id/export', async (c) => {
    const body = await readJson(c, ExportBody);
    const model = await jobs.models.get(c.req.param('id'));
    const variant = body.adapter ? `${body.to}-adapter` : `${body.to}-${body.quant}`;
    const result = await exportRegisteredModel(model, { to: body.to, quant: body.quant, adapter: body.adapter, out: exportFolder(dataDir, model.name, variant), dataDir });
    return c.json({
      object: 'model.export',
      ...result,
      // What a person copies into a shell, and the Modelfile's text, for clients that show them.
      command_line: result.command.map(shellQuote).join(' '),
      modelfile_text: result.modelfile ? await readFile(result.modelfile, 'utf8') : null,
      download: `/api/v1/models/${encodeURIComponent(model.id)}/exports/${variant}`,
    });
  });
  app.get('/:id/exports/:variant', async (c) => {
    const model = await jobs.models.get(c.req.param('id'));
    const variant = c.req.param('variant');
    const what = `${model.id}/exports/${variant}`;
    if (!EXPORT_VARIANT.test(variant)) throw notFound('model export', what, `An export is named TARGET-QUANT or TARGET-adapter (e.g. gguf-q8_0), as POST /api/v1/models/:id/export's "download" gives it.`);
    const gguf = await exportedGguf(exportFolder(dataDir, model.name, variant));
    if (!gguf) throw notFound('model export', what, 'Export the model first (POST /api/v1/models/:id/export); its file is written there.');
    return sendFile(c, gguf, what);
  });
  return app;
}

const EXPORT_VARIANT = new RegExp(`^(${EXPORT_TARGETS.join('|')})-(${[...EXPORT_QUANTS, 'adapter'].join('|')})$`);

/** Where an export of one variant (`gguf-q8_0`, `ollama-adapter`, …) of a model is written, under the data dir. */
function exportFolder(dataDir: string, modelName: string, variant: string): string {
  return join(dataDir, 'exports', exportStem(modelName), variant);
}

/** The one GGUF an export folder holds (each variant writes exactly one; its place differs by target). */
async function exportedGguf(folder: string): Promise<string | undefined> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true }).catch(() => []);
  const found = entries.find((e) => e.isFile() && e.name.endsWith('.gguf') && !e.name.startsWith('.'));
  return found && join(found.parentPath, found.name);
}

/** A file as an attachment, whole or the one byte range a `Range: bytes=…` header asks for (RFC 9110 §14). */
async function sendFile(c: Context, path: string, what: string, filename = basename(path)): Promise<Response> {
  const info = await stat(path).catch(() => null);
  if (!info?.isFile()) throw notFound('model file', what, 'Its file is gone from the data directory; train the model again.');
  const size = info.size;
  c.header('Accept-Ranges', 'bytes');
  const range = byteRange(c.req.header('range'), size);
  if (range === 'unsatisfiable') {
    c.header('Content-Range', `bytes */${size}`);
    // The error body every route uses, with the status Range needs (not one of the error statuses).
    return c.json(new ApiError(400, 'range_not_satisfiable', `The file has ${size} bytes; the requested range ${c.req.header('range')} is outside it.`, 'Range').body(), 416);
  }
  c.header('Content-Type', 'application/octet-stream');
  c.header('Content-Disposition', `attachment; filename="${filename.replace(/[^\w.-]/g, '_')}"`);
  if (range) {
    c.header('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
    c.header('Content-Length', String(range.end - range.start + 1));
    c.status(206);
    return c.body(Readable.toWeb(createReadStream(path, { start: range.start, end: range.end })) as ReadableStream);
  }
  c.header('Content-Length', String(size));
  return c.body(Readable.toWeb(createReadStream(path)) as ReadableStream);
}

/** One `bytes=` range of a file of `size` bytes; undefined for the whole file (no header, or one this server does not serve partially). */
export function byteRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = header && /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    // bytes=-N: the last N bytes.
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

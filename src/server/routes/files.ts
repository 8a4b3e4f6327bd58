import { Readable } from 'node:stream';
import type { Context } from 'hono';
import { Hono } from 'hono';
import { z } from 'zod';
import { checkDataset } from '../../datasets/index.ts';
import { FileTooLargeError, isValidFileId, StoreError, type FileRecord, type StagedFile, type Store } from '../../store/index.ts';
import { ApiError, badRequest, notFound } from '../errors.ts';
import { list, queryInt, readJson } from '../http.ts';
import { checkMultipartType, readMultipart } from '../multipart.ts';

export interface UploadLimits {
  /** Largest file body accepted. */
  maxBytes: number;
  /** Only these purposes are accepted, when set. */
  purposes?: string[];
}

export const toApiFile = (f: FileRecord) => ({
  id: f.id,
  object: 'file' as const,
  bytes: Number(f.bytes),
  created_at: Math.floor(Number(f.created_at) / 1000),
  filename: f.filename,
  purpose: f.purpose,
  status: 'processed' as const,
  sha256: f.sha256,
});

// Room for the multipart framing around the file itself.
const FRAMING_BYTES = 64 * 1024;

// Every non-file field of an upload form, checked once the whole form is read, whatever the
// order of its parts (OpenAI's SDK sends `purpose` after the file).
const UploadFields = z.strictObject({ purpose: z.string().max(64, 'at most 64 characters').optional() }, { error: (issue) => (issue.code === 'unrecognized_keys' ? `Unknown form field(s) ${issue.keys.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}; an upload takes "file" and "purpose"` : undefined) });

/**
 * Streams the `file` part of a multipart request into the file store. The body is counted as it
 * flows; over the limit the request ends with 413. The file is staged under a temporary name and
 * kept only when the whole form has arrived and every field passed: a failure at any point leaves
 * nothing.
 */
export async function uploadFile(c: Context, store: Store, limits: UploadLimits): Promise<FileRecord> {
  const contentType = checkMultipartType(c.req.header('content-type'));
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > limits.maxBytes + FRAMING_BYTES) {
    c.header('Connection', 'close');
    throw new ApiError(413, 'file_too_large', `The upload is ${declared} bytes; the limit is ${limits.maxBytes} bytes per file. Split the file or raise the limit (NODEAI_MAX_FILE_BYTES).`, 'file');
  }
  const body = c.req.raw.body;
  if (!body) throw badRequest('missing_file', 'The request has no body; send the file as multipart/form-data field "file".', 'file');
  let form: { fields: Record<string, string>; files: StagedFile[] };
  try {
    form = await readMultipart(contentType, Readable.fromWeb(body as import('node:stream/web').ReadableStream), {
      onFile: async (part, data) => {
        if (part.name !== 'file') {
          data.resume();
          throw badRequest('invalid_multipart', `Unexpected file field ${JSON.stringify(part.name.slice(0, 40))}; send the file as field "file".`, part.name.slice(0, 40));
        }
        return store.files.stage(data, { filename: part.filename || 'upload', maxBytes: limits.maxBytes });
      },
      onDiscard: (staged) => staged.discard(),
    });
  } catch (err) {
    // The file store wraps a failing source; the request's own failure (cut off, too many
    // parts) is what the client must hear.
    const cause = err instanceof StoreError && err.cause instanceof ApiError ? err.cause : err;
    if (cause instanceof FileTooLargeError || (cause instanceof ApiError && cause.status === 413)) {
      // The client may still be sending; closing stops it instead of reading the rest.
      c.header('Connection', 'close');
      throw new ApiError(413, 'file_too_large', (cause as Error).message, 'file');
    }
    throw cause;
  }
  const [staged, ...extra] = form.files;
  try {
    if (!staged) throw badRequest('missing_file', 'The multipart body has no "file" field with a filename.', 'file');
    if (extra.length) throw badRequest('invalid_multipart', `The form has ${form.files.length} "file" parts; send one file per upload.`, 'file');
    const fields = UploadFields.parse(form.fields);
    const purpose = fields.purpose ?? 'fine-tune';
    checkPurpose(purpose, limits);
    return await staged.commit({ purpose });
  } catch (err) {
    await Promise.all(form.files.map((f) => f.discard()));
    throw err;
  }
}

function checkPurpose(purpose: string, limits: UploadLimits): void {
  if (limits.purposes && !limits.purposes.includes(purpose)) {
    throw badRequest('invalid_purpose', `Unsupported purpose ${JSON.stringify(purpose.slice(0, 40))}; use ${limits.purposes.map((p) => JSON.stringify(p)).join(' or ')}.`, 'purpose');
  }
}

export async function getFileOr404(store: Store, id: string): Promise<FileRecord> {
  const row = isValidFileId(id) ? await store.files.find(id) : undefined;
  if (!row) throw notFound('file', id, 'List the files to find its ID.');
  return row;
}

const CheckBody = z.object({
  model: z.string().min(1).optional(),
  validation_split: z.number().min(0).max(0.5).optional(),
  seed: z.number().int().min(0).optional(),
  epochs: z.union([z.number().int().min(1).max(50), z.literal('auto')]).optional(),
  max_issues: z.number().int().min(1).max(1000).optional(),
});

export function filesRoutes(store: Store, maxUploadBytes: number): Hono {
  const app = new Hono();
  app.post('/', async (c) => c.json(toApiFile(await uploadFile(c, store, { maxBytes: maxUploadBytes })), 201));
  app.get('/', async (c) => {
    const purpose = c.req.query('purpose');
    const limit = queryInt(c, 'limit', 1000, 1, 10_000);
    return c.json(list((await store.files.list({ purpose, limit })).map(toApiFile)));
  });
  app.get('/:id', async (c) => c.json(toApiFile(await getFileOr404(store, c.req.param('id')))));
  app.get('/:id/content', async (c) => {
    const row = await getFileOr404(store, c.req.param('id'));
    const stream = await store.files.open(row.id);
    c.header('Content-Type', 'application/octet-stream');
    c.header('Content-Length', String(row.bytes));
    return c.body(Readable.toWeb(stream) as ReadableStream);
  });
  app.delete('/:id', async (c) => {
    const row = await getFileOr404(store, c.req.param('id'));
    await store.files.delete(row.id);
    return c.json({ id: row.id, object: 'file', deleted: true });
  });
  app.post('/:id/check', async (c) => {
    const row = await getFileOr404(store, c.req.param('id'));
    const body = await readJson(c, CheckBody);
    const report = await checkDataset(
      {
        name: row.filename,
        open: () =>
          (async function* () {
            yield* await store.files.open(row.id);
          })(),
      },
      { model: body.model, validationSplit: body.validation_split, seed: body.seed, epochs: body.epochs, maxIssues: body.max_issues, signal: c.req.raw.signal },
    );
    return c.json({ file_id: row.id, ...report });
  });
  return app;
}

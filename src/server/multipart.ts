// multipart/form-data uploads through @fastify/busboy: file parts flow to their consumer as
// streams, so an upload of any size is never held in memory (Hono's parseBody and undici's
// formData buffer it). The form is read whole before anything is kept, so every field is checked
// whatever its order: a file part is staged by its consumer and committed only after that.
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { Busboy } from '@fastify/busboy';
import { ApiError } from './errors.ts';

export interface PartInfo {
  name: string;
  filename: string;
  contentType: string;
}

export interface MultipartLimits {
  /** Longest value of a non-file field. */
  maxFieldBytes?: number;
  /** Most parts in one request. */
  maxParts?: number;
}

/** Largest header block of one part; busboy would quietly cut a longer one short, so it is refused here. */
export const MAX_PART_HEADER_BYTES = 16 * 1024;

export function checkMultipartType(contentType: string | undefined): string {
  const type = contentType ?? '';
  if (!/^multipart\/form-data\b/i.test(type)) {
    throw new ApiError(415, 'unsupported_media_type', 'Send the upload as multipart/form-data with a "file" field.', 'file');
  }
  if (!/;\s*boundary=(?:"[^"]{1,70}"|[^\s;]{1,70})/i.test(type)) throw new ApiError(400, 'invalid_multipart', 'The multipart Content-Type has no boundary.', 'file');
  return type;
}

const truncated = () => new ApiError(400, 'upload_incomplete', 'The upload ended before the multipart body was complete; nothing was stored. Send the file again.', 'file');
const headerTooLarge = () => new ApiError(400, 'invalid_multipart', `A multipart part has headers over ${MAX_PART_HEADER_BYTES / 1024} KiB.`, null);

const CRLF2 = Buffer.from('\r\n\r\n');

/**
 * Passes the body through unchanged while measuring each part's header block: the bytes from a
 * boundary to the blank line that ends the part's headers. Positions are counted from the start
 * of the body, so a block split over any number of chunks is measured whole.
 */
class PartHeaderLimit extends Transform {
  private readonly delimiter: Buffer;
  /** Bytes at the end of what was seen where a delimiter or a blank line may have begun. */
  private pending = Buffer.from('\r\n');
  /** Body offset of `pending[0]`; the body is read as if it began with CRLF, as RFC 2046 frames every boundary but the first. */
  private pendingOffset = -2;
  /** Body offset where the current header block began; -1 outside one. */
  private headerStart = -1;
  /** Past the closing boundary: the epilogue is not looked at. */
  private ended = false;

  constructor(boundary: string) {
    super();
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.ended) return done(null, chunk);
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const base = this.pendingOffset;
    let at = 0;
    let keepFrom: number;
    for (;;) {
      if (this.headerStart < 0) {
        const i = buf.indexOf(this.delimiter, at);
        if (i < 0) {
          keepFrom = Math.max(at, buf.length - (this.delimiter.length - 1));
          break;
        }
        const after = i + this.delimiter.length;
        if (buf.length < after + 2) {
          keepFrom = i;
          break;
        }
        if (buf[after] === 0x2d && buf[after + 1] === 0x2d) {
          this.ended = true;
          keepFrom = buf.length;
          break;
        }
        this.headerStart = base + after;
        at = after;
      } else {
        const end = buf.indexOf(CRLF2, at);
        if (base + (end < 0 ? buf.length : end) - this.headerStart > MAX_PART_HEADER_BYTES) return done(headerTooLarge());
        if (end < 0) {
          keepFrom = Math.max(at, buf.length - (CRLF2.length - 1));
          break;
        }
        this.headerStart = -1;
        at = end + CRLF2.length;
      }
    }
    this.pending = Buffer.from(buf.subarray(keepFrom));
    this.pendingOffset = base + keepFrom;
    done(null, chunk);
  }
}

/**
 * Reads a whole multipart body. Non-file fields are collected into `fields`; each file part is
 * handed to `onFile`, which must consume (or stage) its stream. Resolves when the form has ended
 * and every `onFile` has settled, with the fields and what each `onFile` returned. Rejects with
 * 400 `upload_incomplete` for a body cut short, 400 `invalid_multipart` for one that breaks the
 * limits, or the first `onFile` failure; then `onDiscard` is called for every `onFile` result, so
 * nothing staged is kept.
 */
export async function readMultipart<T>(
  contentType: string,
  body: Readable,
  handlers: { onFile: (part: PartInfo, data: Readable) => Promise<T>; onDiscard: (staged: T) => Promise<void> },
  limits: MultipartLimits = {},
): Promise<{ fields: Record<string, string>; files: T[] }> {
  const maxField = limits.maxFieldBytes ?? 64 * 1024;
  const maxParts = limits.maxParts ?? 16;
  const boundary = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(checkMultipartType(contentType))!;
  const guard = new PartHeaderLimit(boundary[1] ?? boundary[2]);
  const parser = Busboy({ headers: { 'content-type': contentType }, limits: { fieldSize: maxField, parts: maxParts, headerSize: MAX_PART_HEADER_BYTES } });
  const fields: Record<string, string> = Object.create(null);
  const pending: Promise<T>[] = [];
  const open = new Set<Readable>();
  let failure: unknown;

  await new Promise<void>((resolve) => {
    const fail = (err: unknown) => {
      failure ??= err;
      body.unpipe(guard);
      guard.unpipe(parser);
      // A file part still flowing would wait forever for the rest of a body no longer read.
      for (const stream of open) stream.destroy(truncated());
      resolve();
    };
    body.on('error', () => fail(truncated()));
    guard.on('error', fail);
    parser.on('error', (err) => {
      const message = String((err as Error)?.message ?? err);
      fail(/unexpected end|terminated early/i.test(message) ? truncated() : new ApiError(400, 'invalid_multipart', `The multipart body is malformed: ${message}.`, null));
    });
    parser.on('partsLimit', () => fail(new ApiError(400, 'invalid_multipart', `Too many multipart parts (more than ${maxParts}).`, null)));
    parser.on('field', (name, value, _nameCut, valueCut) => {
      if (valueCut) return fail(new ApiError(400, 'invalid_multipart', `Form field ${JSON.stringify(name.slice(0, 40))} is longer than ${maxField} bytes.`, name.slice(0, 40)));
      fields[name] = value;
    });
    parser.on('file', (name, stream, filename, _encoding, mimeType) => {
      open.add(stream);
      // busboy may report one failure on a file stream more than once, after its consumer has
      // stopped listening; the consumer sees the first through its own listener.
      stream.on('error', () => undefined);
      stream.once('close', () => open.delete(stream));
      stream.once('end', () => open.delete(stream));
      const handled = handlers.onFile({ name, filename, contentType: mimeType }, stream);
      // A consumer that stops reading early must not stall the rest of the form.
      handled.then(
        () => stream.resume(),
        (err: unknown) => {
          stream.resume();
          fail(err);
        },
      );
      pending.push(handled);
    });
    parser.on('finish', resolve);
    body.pipe(guard).pipe(parser);
  });
  const settled = await Promise.allSettled(pending);
  const staged = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure !== undefined || rejected) {
    await Promise.all(staged.map((t) => handlers.onDiscard(t).catch(() => undefined)));
    throw failure ?? rejected!.reason;
  }
  return { fields: { ...fields }, files: staged };
}

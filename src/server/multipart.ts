// A streaming multipart/form-data reader: file parts flow to their consumer chunk by chunk, so an
// upload of any size is never held in memory (Hono's parseBody and undici's formData buffer it).
import { ApiError } from './errors.ts';

export interface PartInfo {
  name: string;
  filename?: string;
  contentType?: string;
}

export interface MultipartLimits {
  /** Longest value of a non-file field. */
  maxFieldBytes?: number;
  /** Most parts in one request. */
  maxParts?: number;
}

const MAX_HEADER_BYTES = 16 * 1024;
const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

export function boundaryOf(contentType: string | undefined): string {
  const type = contentType ?? '';
  if (!/^multipart\/form-data\b/i.test(type)) {
    throw new ApiError(415, 'unsupported_media_type', 'Send the upload as multipart/form-data with a "file" field.', 'file');
  }
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(type);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) throw new ApiError(400, 'invalid_multipart', 'The multipart Content-Type has no boundary.', 'file');
  return boundary;
}

const truncated = () => new ApiError(400, 'upload_incomplete', 'The upload ended before the multipart body was complete; nothing was stored. Send the file again.', 'file');

class Reader {
  buf: Buffer = Buffer.alloc(0);
  private done = false;
  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  async pull(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.it.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    this.buf = this.buf.length === 0 ? Buffer.from(next.value) : Buffer.concat([this.buf, next.value]);
    return true;
  }

  /** Index of `needle`, pulling until found; -1 at end of input or past `max` bytes. */
  async find(needle: Buffer, max: number): Promise<number> {
    for (;;) {
      const i = this.buf.indexOf(needle);
      if (i >= 0) return i;
      if (this.buf.length > max) return -1;
      if (!(await this.pull())) return -1;
    }
  }

  async ensure(n: number): Promise<boolean> {
    while (this.buf.length < n) if (!(await this.pull())) return false;
    return true;
  }

  async cancel(): Promise<void> {
    await this.it.return?.();
  }
}

function parseHeaders(block: string): PartInfo {
  let disposition = '';
  let contentType: string | undefined;
  for (const line of block.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === 'content-disposition') disposition = value;
    else if (key === 'content-type') contentType = value;
  }
  const param = (name: string) => {
    const m = new RegExp(`(?:^|;)\\s*${name}="((?:[^"\\\\]|\\\\.)*)"`, 'i').exec(disposition) ?? new RegExp(`(?:^|;)\\s*${name}=([^;\\s]*)`, 'i').exec(disposition);
    return m ? m[1].replace(/\\(.)/g, '$1') : undefined;
  };
  const name = param('name');
  if (!/^form-data/i.test(disposition) || name === undefined) {
    throw new ApiError(400, 'invalid_multipart', 'A multipart part has no Content-Disposition form-data name.', null);
  }
  const filenameStar = param('filename\\*');
  let filename = param('filename');
  if (filenameStar) {
    const m = /^[^']*'[^']*'(.*)$/.exec(filenameStar);
    try {
      filename = decodeURIComponent(m ? m[1] : filenameStar);
    } catch {
      // A malformed RFC 5987 name falls back to the plain one.
    }
  }
  return { name, filename, contentType };
}

/**
 * Reads a multipart body part by part. Non-file fields are collected into `fields`; each file part
 * is handed to `onFile` as a stream that must be consumed (or thrown out of) before the next part
 * is read. A body that ends early fails with 400 `upload_incomplete` from inside that stream, so
 * whatever consumes it sees the failure and keeps nothing.
 */
export async function readMultipart(
  body: AsyncIterable<Uint8Array>,
  boundary: string,
  onFile: (part: PartInfo, data: AsyncIterable<Buffer>, fields: Record<string, string>) => Promise<void>,
  limits: MultipartLimits = {},
): Promise<Record<string, string>> {
  const maxField = limits.maxFieldBytes ?? 64 * 1024;
  const maxParts = limits.maxParts ?? 16;
  const dash = Buffer.from(`--${boundary}`);
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const reader = new Reader(body[Symbol.asyncIterator]());
  const fields: Record<string, string> = {};
  try {
    // The preamble before the first boundary is allowed by RFC 2046 and ignored.
    const first = await reader.find(dash, MAX_HEADER_BYTES);
    if (first < 0) throw reader.buf.length > MAX_HEADER_BYTES ? new ApiError(400, 'invalid_multipart', 'No multipart boundary found at the start of the body.', null) : truncated();
    reader.buf = reader.buf.subarray(first + dash.length);
    for (let parts = 0; ; parts++) {
      if (!(await reader.ensure(2))) throw truncated();
      if (reader.buf[0] === 0x2d && reader.buf[1] === 0x2d) return fields;
      if (parts >= maxParts) throw new ApiError(400, 'invalid_multipart', `Too many multipart parts (more than ${maxParts}).`, null);
      const lineEnd = await reader.find(CRLF, 256);
      if (lineEnd < 0) throw truncated();
      reader.buf = reader.buf.subarray(lineEnd + 2);
      const headerEnd = await reader.find(HEADER_END, MAX_HEADER_BYTES);
      if (headerEnd < 0) {
        if (reader.buf.length > MAX_HEADER_BYTES) throw new ApiError(400, 'invalid_multipart', 'A multipart part has headers over 16 KiB.', null);
        throw truncated();
      }
      const part = parseHeaders(reader.buf.subarray(0, headerEnd).toString('utf8'));
      reader.buf = reader.buf.subarray(headerEnd + HEADER_END.length);

      let finished = false;
      const data = (async function* (): AsyncGenerator<Buffer> {
        for (;;) {
          const i = reader.buf.indexOf(delimiter);
          if (i >= 0) {
            if (i > 0) yield reader.buf.subarray(0, i);
            reader.buf = reader.buf.subarray(i + delimiter.length);
            finished = true;
            return;
          }
          // Keep a tail that could be the start of a delimiter split across chunks.
          const safe = reader.buf.length - (delimiter.length - 1);
          if (safe > 0) {
            const out = reader.buf.subarray(0, safe);
            reader.buf = reader.buf.subarray(safe);
            yield out;
          }
          if (!(await reader.pull())) throw truncated();
        }
      })();

      if (part.filename !== undefined) {
        await onFile(part, data, fields);
        if (!finished) for await (const _ of data) void _;
        if (!finished) throw truncated();
      } else {
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of data) {
          size += chunk.length;
          if (size > maxField) throw new ApiError(400, 'invalid_multipart', `Form field "${part.name}" is longer than ${maxField} bytes.`, part.name);
          chunks.push(chunk);
        }
        fields[part.name] = Buffer.concat(chunks).toString('utf8');
      }
    }
  } finally {
    await reader.cancel();
  }
}

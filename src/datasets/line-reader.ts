import { isUtf8 } from 'node:buffer';
import { hints, issue, type DatasetIssue } from './issues.ts';

/** `fatal`: reading stopped here (binary or UTF-16 file); the issue is about the file, not one line. */
export type LineItem = { line: number; text: string; issue?: undefined; fatal?: undefined } | { line: number; text?: undefined; issue: DatasetIssue; fatal?: boolean };

export interface ReadProgress {
  bytes: number;
}

export interface LineReaderOptions {
  /** Longest line kept; a longer one is reported as `line_too_long` and skipped, never buffered whole. */
  maxLineBytes?: number;
  progress?: ReadProgress;
}

export const DEFAULT_MAX_LINE_BYTES = 32 * 1024 * 1024;

const mb = (n: number) => `${(n / (1024 * 1024)).toFixed(n < 1024 * 1024 ? 2 : 0)} MB`;

function tooLong(line: number, max: number): DatasetIssue {
  return issue(
    'line_too_long',
    line,
    null,
    `Line is longer than ${mb(max)}; it was skipped`,
    'Split the example into shorter ones, or remove embedded files (base64 images, documents) from it',
  );
}

// A stray NUL in a text file is that line's problem; NULs in bytes that are not UTF-8, or many
// of them, mean the whole file is not text (git's rule of thumb, made less trigger-happy).
function looksBinary(sample: Buffer): boolean {
  let nul = 0;
  for (let i = sample.indexOf(0); i !== -1; i = sample.indexOf(0, i + 1)) nul++;
  if (nul === 0) return false;
  if (nul * 10 > sample.length) return true;
  for (let cut = 0; cut < 4 && cut < sample.length; cut++) if (isUtf8(sample.subarray(0, sample.length - cut))) return false;
  return true;
}

/** Checks the first bytes of a file for things that are not UTF-8 text at all. */
export function sniffBinary(head: Buffer): DatasetIssue | null {
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) {
    return issue('unsupported_encoding', 1, null, 'The file is UTF-16 text, not UTF-8', hints.encoding);
  }
  const sample = head.subarray(0, 8192);
  const gzip = sample[0] === 0x1f && sample[1] === 0x8b;
  const zip = sample[0] === 0x50 && sample[1] === 0x4b && sample[2] === 0x03 && sample[3] === 0x04;
  if (gzip || zip || looksBinary(sample)) {
    const what = gzip ? 'a gzip archive' : zip ? 'a zip archive (xlsx, docx…)' : 'a binary file';
    return issue(
      'binary_file',
      1,
      null,
      `This is ${what}, not text`,
      gzip || zip ? 'Extract it first and check the JSONL, JSON or CSV file inside' : 'Give a UTF-8 JSONL, JSON or CSV file',
    );
  }
  return null;
}

function lineIssue(bytes: Buffer, line: number): DatasetIssue | null {
  if (bytes.indexOf(0) !== -1) return issue('invalid_utf8', line, null, 'Line contains NUL bytes (binary data)', hints.encoding);
  if (!isUtf8(bytes)) return issue('invalid_utf8', line, null, 'Line is not valid UTF-8', hints.encoding);
  return null;
}

const isBlank = (s: string) => s.length === 0 || (s.charCodeAt(0) <= 32 && s.trim().length === 0);

/**
 * Splits a byte stream into lines, one batch per chunk so the per-line cost is a plain loop and
 * not an await. Tolerates CRLF, a UTF-8 BOM and blank lines (skipped, but counted for line
 * numbers). A line over `maxLineBytes` is dropped while streaming past it; invalid UTF-8 or NUL
 * bytes in a line give an issue for that line; a binary or UTF-16 file stops at once.
 */
export async function* readLines(chunks: AsyncIterable<Uint8Array>, options: LineReaderOptions = {}): AsyncGenerator<LineItem[]> {
  const max = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const progress = options.progress;
  let line = 1; // number of the line that `pending` belongs to
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let skipping = false; // the current line is over the limit: discard until its newline
  let first = true;

  const pushLine = (out: LineItem[], bytes: Buffer, n: number) => {
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length > max) {
      out.push({ line: n, issue: tooLong(n, max) });
      return;
    }
    const bad = lineIssue(bytes, n);
    if (bad) {
      out.push({ line: n, issue: bad });
      return;
    }
    let text = bytes.toString('utf8');
    if (n === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (!isBlank(text)) out.push({ line: n, text });
  };

  for await (const raw of chunks) {
    let buf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    if (progress) progress.bytes += buf.length;
    if (buf.length === 0) continue;
    if (first) {
      first = false;
      const fatal = sniffBinary(buf);
      if (fatal) {
        yield [{ line: 1, issue: fatal, fatal: true }];
        return;
      }
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
    }
    const out: LineItem[] = [];
    let start = 0;
    const nl = buf.indexOf(0x0a);
    if (nl === -1) {
      if (!skipping) {
        if (pendingBytes + buf.length > max + 1) {
          out.push({ line, issue: tooLong(line, max) });
          skipping = true;
          pending = [];
          pendingBytes = 0;
        } else {
          // Copy: a producer may reuse its buffer for the next chunk.
          pending.push(Buffer.from(buf));
          pendingBytes += buf.length;
        }
      }
      if (out.length) yield out;
      continue;
    }
    // The line that was carried over from earlier chunks ends here.
    if (skipping) {
      skipping = false;
    } else if (pendingBytes + nl > max + 1) {
      out.push({ line, issue: tooLong(line, max) });
    } else {
      pushLine(out, pendingBytes ? Buffer.concat([...pending, buf.subarray(0, nl)]) : buf.subarray(0, nl), line);
    }
    pending = [];
    pendingBytes = 0;
    line++;
    start = nl + 1;

    // Whole lines in the rest of the chunk: validate and decode them in one go when they are clean.
    const last = buf.lastIndexOf(0x0a);
    if (last >= start) {
      const region = buf.subarray(start, last);
      if (region.length <= max && region.indexOf(0) === -1 && isUtf8(region)) {
        const lines = region.toString('utf8').split('\n');
        const checkLength = max < region.length;
        for (let i = 0; i < lines.length; i++, line++) {
          let text = lines[i];
          if (text.length > 0 && text.charCodeAt(text.length - 1) === 13) text = text.slice(0, -1);
          if (isBlank(text)) continue;
          if (checkLength && text.length > max / 3 && Buffer.byteLength(text) > max) out.push({ line, issue: tooLong(line, max) });
          else out.push({ line, text });
        }
      } else {
        let s = start;
        while (s <= last) {
          const e = buf.indexOf(0x0a, s);
          pushLine(out, buf.subarray(s, e), line);
          line++;
          s = e + 1;
        }
      }
      start = last + 1;
    }
    if (start < buf.length) {
      const rest = buf.length - start;
      if (rest > max + 1) {
        out.push({ line, issue: tooLong(line, max) });
        skipping = true;
      } else {
        pending.push(Buffer.from(buf.subarray(start)));
        pendingBytes = rest;
      }
    }
    if (out.length) yield out;
  }
  if (pendingBytes > 0) {
    const out: LineItem[] = [];
    pushLine(out, Buffer.concat(pending), line);
    if (out.length) yield out;
  }
}

import { isUtf8 } from 'node:buffer';
import { Readable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse';
import { hints, issue, UNKNOWN_FORMAT, type DatasetIssue } from './issues.ts';
import { DEFAULT_MAX_LINE_BYTES, readLines, sniffBinary, type ReadProgress } from './line-reader.ts';
import type { FileType } from './types.ts';

/** One raw example as parsed from the file (not yet validated), or a problem reading it. */
/** `fatal`: reading stopped at this issue (a broken array, a bad CSV header, a binary file). */
export type RecordItem = { line: number; value: unknown; issue?: undefined; fatal?: undefined } | { line: number; value?: undefined; issue: DatasetIssue; fatal?: boolean };

/** Which CSV/TSV columns hold what. Header names are matched case-insensitively. */
export interface CsvColumns {
  prompt?: string;
  completion?: string;
  system?: string;
  user?: string;
  assistant?: string;
}

export interface RecordReaderOptions {
  maxLineBytes?: number;
  progress?: ReadProgress;
  csv?: { columns?: CsvColumns; delimiter?: string };
}

function jsonProblem(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.replace(/^JSON\.parse: /, '').replace(/ in JSON at position \d+.*$/, '');
}

async function* readJsonl(chunks: AsyncIterable<Uint8Array>, o: RecordReaderOptions): AsyncGenerator<RecordItem[]> {
  for await (const lines of readLines(chunks, o)) {
    const out: RecordItem[] = new Array(lines.length);
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i];
      if (l.issue) {
        out[i] = l;
        continue;
      }
      try {
        out[i] = { line: l.line, value: JSON.parse(l.text) };
      } catch (err) {
        out[i] = { line: l.line, issue: issue('invalid_json', l.line, null, `Line is not valid JSON (${jsonProblem(err)})`, hints.invalidJson) };
      }
    }
    yield out;
  }
}

/**
 * Streams the elements of a top-level JSON array without holding the array: a byte scanner finds
 * where each element starts and ends (tracking strings and nesting), and only that element is
 * decoded and parsed.
 */
async function* readJsonArray(chunks: AsyncIterable<Uint8Array>, o: RecordReaderOptions): AsyncGenerator<RecordItem[]> {
  const max = o.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const enum S {
    Start,
    Value,
    In,
    After,
    End,
  }
  let state = S.Start;
  let line = 1;
  let depth = 0;
  let inString = false;
  let escape = false;
  let elemLine = 0;
  let parts: Buffer[] = [];
  let elemBytes = 0;
  let tooBig = false;
  let count = 0;
  let first = true;
  const fatal = (msg: string): RecordItem => ({ line, fatal: true, issue: issue('invalid_json', line, null, msg, 'Make the file one JSON array of objects: [{...}, {...}]') });

  const finish = (out: RecordItem[]) => {
    count++;
    if (tooBig) {
      out.push({
        line: elemLine,
        issue: issue('line_too_long', elemLine, null, `Example is larger than ${(max / 1048576).toFixed(2)} MB; it was skipped`, 'Split it into shorter examples'),
      });
    } else {
      const bytes = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      if (!isUtf8(bytes)) {
        out.push({ line: elemLine, issue: issue('invalid_utf8', elemLine, null, 'Example is not valid UTF-8', hints.encoding) });
      } else {
        try {
          out.push({ line: elemLine, value: JSON.parse(bytes.toString('utf8')) });
        } catch (err) {
          out.push({ line: elemLine, issue: issue('invalid_json', elemLine, null, `Array element ${count} is not valid JSON (${jsonProblem(err)})`, hints.invalidJson) });
        }
      }
    }
    parts = [];
    elemBytes = 0;
    tooBig = false;
  };

  for await (const raw of chunks) {
    let buf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    if (o.progress) o.progress.bytes += buf.length;
    if (first && buf.length) {
      first = false;
      const bad = sniffBinary(buf);
      if (bad) {
        yield [{ line: 1, issue: bad, fatal: true }];
        return;
      }
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
    }
    const out: RecordItem[] = [];
    let elemStart = state === S.In ? 0 : -1;
    const keep = (end: number) => {
      if (tooBig || end <= elemStart) return;
      const n = end - elemStart;
      if (elemBytes + n > max) {
        tooBig = true;
        parts = [];
        return;
      }
      parts.push(buf.subarray(elemStart, end));
      elemBytes += n;
    };
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i];
      if (state === S.In) {
        if (inString) {
          if (escape) escape = false;
          else if (b === 0x5c) escape = true;
          else if (b === 0x22) {
            inString = false;
            if (depth === 0) {
              keep(i + 1);
              finish(out);
              state = S.After;
            }
          } else if (b === 0x0a) line++;
          continue;
        }
        if (b === 0x22) inString = true;
        else if (b === 0x7b || b === 0x5b) depth++;
        else if (b === 0x7d || b === 0x5d) {
          if (depth === 0) {
            // `]` closing the array right after a bare number / literal
            keep(i);
            finish(out);
            state = S.After;
            i--;
            continue;
          }
          depth--;
          if (depth === 0) {
            keep(i + 1);
            finish(out);
            state = S.After;
          }
        } else if (depth === 0 && (b === 0x2c || b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09)) {
          keep(i);
          finish(out);
          state = S.After;
          i--;
          continue;
        } else if (b === 0x0a) line++;
        continue;
      }
      if (b === 0x0a) {
        line++;
        continue;
      }
      if (b === 0x20 || b === 0x0d || b === 0x09) continue;
      if (state === S.Start) {
        if (b === 0xef || b === 0xbb || b === 0xbf) continue; // a BOM split across the first chunks
        if (b !== 0x5b) {
          out.push(fatal('A JSON data file must be an array: it should start with ['));
          yield out;
          return;
        }
        state = S.Value;
      } else if (state === S.Value) {
        if (b === 0x5d && count === 0) {
          state = S.End;
          continue;
        }
        state = S.In;
        elemStart = i;
        elemLine = line;
        depth = 0;
        i--; // let the In state see the first byte
      } else if (state === S.After) {
        if (b === 0x2c) state = S.Value;
        else if (b === 0x5d) state = S.End;
        else {
          out.push(fatal(`Expected ',' or ']' after array element ${count}`));
          yield out;
          return;
        }
      } else {
        out.push(fatal('Unexpected text after the closing ] of the array'));
        yield out;
        return;
      }
    }
    if (state === S.In) keep(buf.length);
    if (state === S.In && !tooBig) {
      // The chunk may be reused by its producer: copy what is kept of it.
      parts = parts.map((p) => (p.buffer === buf.buffer ? Buffer.from(p) : p));
    }
    if (out.length) yield out;
  }
  const ended = state as S; // assigned inside the loop; TypeScript narrows it too eagerly
  if (ended !== S.End && ended !== S.Start) {
    yield [fatal('The JSON array is not closed: the file ends before its ]')];
  }
}

const lower = (s: string | undefined) => s?.trim().toLowerCase();

async function* readCsv(chunks: AsyncIterable<Uint8Array>, fileType: 'csv' | 'tsv', o: RecordReaderOptions): AsyncGenerator<RecordItem[]> {
  const delimiter = o.csv?.delimiter ?? (fileType === 'tsv' ? '\t' : ',');
  const progress = o.progress;
  let decodedLines = 1;
  let badUtf8: DatasetIssue | null = null;
  // Decode with a fatal decoder so invalid UTF-8 is reported instead of silently replaced.
  async function* text(): AsyncGenerator<string> {
    const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
    let first = true;
    for await (const chunk of chunks) {
      if (progress) progress.bytes += chunk.byteLength;
      if (first && chunk.byteLength) {
        first = false;
        const bad = sniffBinary(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if (bad) {
          badUtf8 = bad;
          return;
        }
      }
      let s: string;
      try {
        s = decoder.decode(chunk, { stream: true });
      } catch {
        badUtf8 = issue('invalid_utf8', decodedLines, null, `The file is not valid UTF-8 (at or after line ${decodedLines}); reading stopped`, hints.encoding);
        return;
      }
      for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) decodedLines++;
      yield s;
    }
  }
  const parser = Readable.from(text()).pipe(
    parseCsv({
      delimiter,
      columns: (header: string[]) => header.map((h) => h.trim().toLowerCase()),
      skip_empty_lines: true,
      relax_column_count: true,
      record_delimiter: ['\r\n', '\n', '\r'], // files edited on several systems mix them
      info: true,
      max_record_size: o.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
    }),
  );
  const want = o.csv?.columns;
  let mode: { kind: 'completion'; prompt: string; completion: string } | { kind: 'chat'; system?: string; user: string; assistant: string } | null = null;
  let batch: RecordItem[] = [];
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string | undefined>; info: { lines: number } }>) {
      const line = info.lines;
      if (!mode) {
        const cols = Object.keys(record);
        const has = (c: string | undefined) => c !== undefined && cols.includes(c);
        const m = { prompt: lower(want?.prompt) ?? 'prompt', completion: lower(want?.completion) ?? 'completion', system: lower(want?.system) ?? 'system', user: lower(want?.user) ?? 'user', assistant: lower(want?.assistant) ?? 'assistant' };
        if (has(m.prompt) && has(m.completion) && !(want?.user || want?.assistant)) mode = { kind: 'completion', prompt: m.prompt, completion: m.completion };
        else if (has(m.user) && has(m.assistant)) mode = { kind: 'chat', system: has(m.system) ? m.system : undefined, user: m.user, assistant: m.assistant };
        else {
          yield [
            {
              line: 1,
              fatal: true,
              issue: issue(
                'unknown_format',
                1,
                null,
                `${UNKNOWN_FORMAT}: the CSV header has columns ${cols.map((c) => `'${c}'`).join(', ')}`,
                'Name the columns prompt,completion or system,user,assistant (system optional), or map them with the csv.columns option',
              ),
            },
          ];
          return;
        }
      }
      let value: unknown;
      if (mode.kind === 'completion') value = { prompt: record[mode.prompt], completion: record[mode.completion] };
      else {
        const messages = [];
        const sys = mode.system ? record[mode.system] : undefined;
        if (sys !== undefined && sys.trim() !== '') messages.push({ role: 'system', content: sys });
        messages.push({ role: 'user', content: record[mode.user] ?? null }, { role: 'assistant', content: record[mode.assistant] ?? null });
        value = { messages };
      }
      batch.push({ line, value });
      if (batch.length >= 1024) {
        yield batch;
        batch = [];
      }
    }
  } catch (err) {
    const e = err as Error & { lines?: number };
    batch.push({
      line: e.lines ?? decodedLines,
      fatal: true,
      issue: issue('invalid_csv', e.lines ?? decodedLines, null, `The CSV cannot be read: ${e.message}`, 'Check quoting: a field with commas, quotes or newlines must be in double quotes, with inner quotes doubled'),
    });
  }
  if (badUtf8) batch.push({ line: (badUtf8 as DatasetIssue).line ?? 1, issue: badUtf8, fatal: true });
  if (batch.length) yield batch;
}

/** Raw examples from a file of any supported type, in batches, each with its line number. */
export function readRecords(chunks: AsyncIterable<Uint8Array>, fileType: FileType, options: RecordReaderOptions = {}): AsyncGenerator<RecordItem[]> {
  switch (fileType) {
    case 'jsonl':
      return readJsonl(chunks, options);
    case 'json':
      return readJsonArray(chunks, options);
    case 'csv':
    case 'tsv':
      return readCsv(chunks, fileType, options);
  }
}

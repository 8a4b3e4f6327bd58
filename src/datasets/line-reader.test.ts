import { describe, expect, it } from 'vitest';
import { readLines, type LineItem } from './line-reader.ts';

async function* pieces(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function collect(gen: AsyncIterable<LineItem[]>): Promise<LineItem[]> {
  const out: LineItem[] = [];
  for await (const batch of gen) out.push(...batch);
  return out;
}

const simple = (items: LineItem[]) => items.map((i) => (i.issue ? [i.line, i.issue.code] : [i.line, i.text]));

describe('readLines', () => {
  const text = Buffer.from('\uFEFF{"a":1}\r\n\r\n  \n{"b":"é"}\r\n\n{"c":3}', 'utf8');

  it('handles BOM, CRLF, blank lines and a last line without newline, at every chunk size', async () => {
    for (const size of [1, 2, 3, 5, 7, 64, 1 << 20]) {
      expect(simple(await collect(readLines(pieces(text, size)))), `chunk ${size}`).toEqual([
        [1, '{"a":1}'],
        [4, '{"b":"é"}'],
        [6, '{"c":3}'],
      ]);
    }
  });

  it('reports invalid UTF-8 on its own line and keeps going', async () => {
    const bytes = Buffer.concat([Buffer.from('{"a":1}\n'), Buffer.from([0x7b, 0xc3, 0x28, 0x7d, 0x0a]), Buffer.from('{"b":2}\n')]);
    for (const size of [1, 4, 1 << 20]) {
      const items = await collect(readLines(pieces(bytes, size)));
      expect(simple(items)).toEqual([
        [1, '{"a":1}'],
        [2, 'invalid_utf8'],
        [3, '{"b":2}'],
      ]);
      expect(items[1].issue?.message).toBe('Line is not valid UTF-8');
    }
  });

  it('reports a stray NUL byte in a text file on its line, not as a binary file', async () => {
    const escaped = String.raw`{"n":"\u0000"}`; // an escaped NUL is text, not a NUL byte
    const bytes = Buffer.concat([Buffer.from(`{"a":"${'text '.repeat(20)}"}\n${escaped}\n`), Buffer.from([0x7b, 0x00, 0x7d, 0x0a]), Buffer.from('{"c":3}\n')]);
    for (const size of [1, 4, 1 << 20]) {
      const items = await collect(readLines(pieces(bytes, size)));
      expect(simple(items).slice(1)).toEqual([
        [2, escaped],
        [3, 'invalid_utf8'],
        [4, '{"c":3}'],
      ]);
      expect(items[2].issue?.message).toBe('Line contains NUL bytes (binary data)');
    }
  });

  it('stops at once on a binary file, a gzip archive or UTF-16 text', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0x0a, 1, 2]);
    const gz = Buffer.from([0x1f, 0x8b, 8, 0, 0x0a]);
    const utf16 = Buffer.from('\uFEFF{"a":1}\n', 'utf16le');
    for (const [bytes, code, msg] of [
      [png, 'binary_file', 'This is a binary file, not text'],
      [gz, 'binary_file', 'This is a gzip archive, not text'],
      [utf16, 'unsupported_encoding', 'The file is UTF-16 text, not UTF-8'],
    ] as const) {
      const items = await collect(readLines(pieces(bytes, 1 << 20)));
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({ line: 1, fatal: true, issue: { code, message: msg } });
    }
  });

  it('skips a 100 MB line without buffering it and reads the next line', async () => {
    const mb = Buffer.alloc(1 << 20, 0x61);
    async function* gen() {
      yield Buffer.from('{"first":1}\n{"big":"');
      for (let i = 0; i < 100; i++) yield mb; // the same buffer: nothing is kept of it
      yield Buffer.from('"}\n{"after":2}\n');
    }
    const before = process.memoryUsage().rss;
    const items = await collect(readLines(gen(), { maxLineBytes: 8 << 20 }));
    expect(simple(items)).toEqual([
      [1, '{"first":1}'],
      [2, 'line_too_long'],
      [3, '{"after":2}'],
    ]);
    expect(items[1].issue?.message).toBe('Line is longer than 8 MB; it was skipped');
    expect(process.memoryUsage().rss - before).toBeLessThan(64 << 20);
  });

  it('applies the limit to lines inside one chunk and to the last line', async () => {
    const bytes = Buffer.from('{"a":1}\n' + 'x'.repeat(50) + '\n{"b":2}\n' + 'y'.repeat(40));
    for (const size of [3, 1 << 20]) {
      expect(simple(await collect(readLines(pieces(bytes, size), { maxLineBytes: 20 })))).toEqual([
        [1, '{"a":1}'],
        [2, 'line_too_long'],
        [3, '{"b":2}'],
        [4, 'line_too_long'],
      ]);
    }
  });

  it('streams past 2 GB with byte offsets intact (a 2 GB line of no newlines, made lazily)', async () => {
    const chunk = Buffer.alloc(4 << 20, 0x20);
    const progress = { bytes: 0 };
    async function* gen() {
      for (let i = 0; i < 513; i++) yield chunk; // 2 GiB + 4 MiB
      yield Buffer.from('\n{"ok":true}\n');
    }
    const items = await collect(readLines(gen(), { progress }));
    expect(simple(items)).toEqual([
      [1, 'line_too_long'],
      [2, '{"ok":true}'],
    ]);
    expect(progress.bytes).toBe(513 * (4 << 20) + 13);
  });
});

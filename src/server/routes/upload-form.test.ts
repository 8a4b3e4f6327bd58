// Every field of an upload form is checked whatever its order, within the part-header limit,
// and what a client stored never reaches a terminal as control characters.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as filesCli } from '../../cli/files.ts';
import { run as jobsCli } from '../../cli/jobs.ts';
import { JobQueue } from '../../jobs/index.ts';
import { MAX_PART_HEADER_BYTES } from '../multipart.ts';
import { startTestServer, type TestServer } from '../testing.ts';

const LINE = '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n';
const BOUNDARY = 'form-boundary-7f3a';

/** A multipart body written by hand, so part order and headers are exactly as given. */
function multipart(parts: { name: string; value: string; filename?: string; extraHeader?: string }[]): Buffer {
  const out = parts.map((p) => {
    const disposition = `Content-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    return `--${BOUNDARY}\r\n${disposition}\r\n${p.extraHeader ? p.extraHeader + '\r\n' : ''}\r\n${p.value}\r\n`;
  });
  return Buffer.from(out.join('') + `--${BOUNDARY}--\r\n`);
}

describe('upload forms', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t?.close());

  const stored = async () => ({ files: existsSync(join(t.dataDir, 'files')) ? readdirSync(join(t.dataDir, 'files')).sort() : [], rows: (await (await t.api('/api/v1/files')).json()).data.length });
  /** POSTs `body` in chunks of `chunk` bytes, as a slow client would. */
  const post = (body: Buffer, chunk = body.length) =>
    t.api('/api/v1/files', {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < body.length; i += chunk) controller.enqueue(body.subarray(i, i + chunk));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);

  it('checks a purpose sent after the file, keeping nothing when it is wrong', async () => {
    const before = await stored();
    for (const purpose of ['../x', 'p'.repeat(3000), '\u001b[31mred\u001b[0m', 'Fine Tune']) {
      const res = await post(multipart([{ name: 'file', filename: 'train.jsonl', value: LINE }, { name: 'purpose', value: purpose }]));
      expect(res.status, JSON.stringify(purpose.slice(0, 20))).toBe(400);
      expect((await res.json()).error.param).toBe('purpose');
    }
    expect(await stored()).toEqual(before);
    const ok = await post(multipart([{ name: 'file', filename: 'train.jsonl', value: LINE }, { name: 'purpose', value: 'batch' }]));
    expect(ok.status).toBe(201);
    expect((await ok.json()).purpose).toBe('batch');
  });

  it('refuses unknown fields and a second file, keeping nothing', async () => {
    const before = await stored();
    const unknown = await post(multipart([{ name: 'file', filename: 'a.jsonl', value: LINE }, { name: 'owner', value: 'me' }]));
    expect(unknown.status).toBe(400);
    expect((await unknown.json()).error.message).toMatch(/Unknown form field.*"owner"/);
    const two = await post(multipart([{ name: 'file', filename: 'a.jsonl', value: LINE }, { name: 'file', filename: 'b.jsonl', value: LINE }]));
    expect(two.status).toBe(400);
    expect((await two.json()).error.message).toMatch(/one file per upload/);
    expect(await stored()).toEqual(before);
  });

  it(`refuses a part header over ${MAX_PART_HEADER_BYTES / 1024} KiB, in one piece or in many, and takes one under it`, async () => {
    const before = await stored();
    const padded = (bytes: number) => multipart([{ name: 'file', filename: 'a.jsonl', value: LINE, extraHeader: `X-Padding: ${'p'.repeat(bytes)}` }]);
    for (const chunk of [1 << 20, 1000, 7]) {
      const res = await post(padded(20 * 1024), chunk);
      expect(res.status, `chunks of ${chunk}`).toBe(400);
      expect((await res.json()).error).toMatchObject({ code: 'invalid_multipart', message: expect.stringMatching(/headers over 16 KiB/) });
    }
    expect(await stored()).toEqual(before);
    expect((await post(padded(15 * 1024), 1000)).status).toBe(201);
  });

  it('never prints control characters from stored data to a terminal', async () => {
    // As an older version stored it, before every field was checked.
    await t.store.db.insertInto('files').values({ id: 'file-AAAAAAAAAAAAAAAAAAAAAAAA', filename: 'evil\u001b]0;pwned\u0007.jsonl', purpose: '\u001b[2J', bytes: 1, sha256: '0'.repeat(64), created_at: Date.now() }).execute();
    const job = await new JobQueue(t.store).create({ model: 'base\u001b]0;pwned\u0007', training_file: 'file-AAAAAAAAAAAAAAAAAAAAAAAA' });
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
    try {
      expect(await filesCli(['list', '--data-dir', t.dataDir])).toBe(0);
      expect(await jobsCli(['list', '--data-dir', t.dataDir])).toBe(0);
      expect(await jobsCli(['show', job.id, '--data-dir', t.dataDir])).toBe(0);
    } finally {
      log.mockRestore();
    }
    const text = lines.join('\n');
    expect(text).toContain('evil\\x1b]0;pwned\\x07.jsonl');
    expect(text).toContain('base model:        base\\x1b]0;pwned\\x07');
    // eslint-disable-next-line no-control-regex
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
  });
});

describe('half-uploaded files', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t?.close());

  it('are removed at the next upload once their writer is gone, not an hour later; a live writer keeps its own', async () => {
    const gone = spawnSync(process.execPath, ['-e', '']).pid!;
    const dir = join(t.dataDir, 'files');
    mkdirSync(dir, { recursive: true });
    const dead = join(dir, `file-BBBBBBBBBBBBBBBBBBBBBBBB.${gone}.part`);
    // The test runner's own parent: alive, and not this process.
    const live = join(dir, `file-CCCCCCCCCCCCCCCCCCCCCCCC.${process.ppid}.part`);
    writeFileSync(dead, 'half');
    writeFileSync(live, 'half');
    const fd = new FormData();
    fd.set('file', new Blob([LINE]), 'a.jsonl');
    expect((await t.api('/api/v1/files', { method: 'POST', body: fd })).status).toBe(201);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });
});

import { connect } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, TEST_TOKEN, type TestServer } from '../testing.ts';

const SUPPORT = readFileSync(new URL('../../../examples/data/customer-support.jsonl', import.meta.url));

function form(content: Buffer | string, filename = 'train.jsonl', purpose?: string): FormData {
  const fd = new FormData();
  if (purpose) fd.set('purpose', purpose);
  fd.set('file', new Blob([content]), filename);
  return fd;
}

/** Sends raw bytes over a socket and returns the status line's code (or null if the socket closed first). */
function rawRequest(url: string, head: string, body: Buffer, endEarly: boolean): Promise<{ status: number | null; text: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let text = '';
    socket.on('data', (d) => (text += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ status: /^HTTP\/1\.1 (\d+)/.exec(text) ? Number(/^HTTP\/1\.1 (\d+)/.exec(text)![1]) : null, text }));
    socket.write(head);
    socket.write(body, () => {
      // A half-sent upload: the client stops writing and closes its side.
      if (endEarly) socket.end();
    });
  });
}

describe('/api/v1/files', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ maxUploadBytes: 64 * 1024 });
  });
  afterAll(() => t.close());

  const bodies = () => readdirSync(join(t.dataDir, 'files')).sort();

  it('uploads a file streamed from multipart, then lists, gets and reads it back', async () => {
    const res = await t.api('/api/v1/files', { method: 'POST', body: form(SUPPORT, 'support.jsonl') });
    expect(res.status).toBe(201);
    const file = await res.json();
    expect(file).toMatchObject({ object: 'file', filename: 'support.jsonl', purpose: 'fine-tune', bytes: SUPPORT.length });
    expect(file.id).toMatch(/^file-/);
    const listed = await (await t.api('/api/v1/files')).json();
    expect(listed.data.map((f: { id: string }) => f.id)).toContain(file.id);
    expect(await (await t.api(`/api/v1/files/${file.id}`)).json()).toEqual(file);
    const content = Buffer.from(await (await t.api(`/api/v1/files/${file.id}/content`)).arrayBuffer());
    expect(content.equals(SUPPORT)).toBe(true);
  });

  it('takes binary content and a purpose sent after the file', async () => {
    const bytes = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256));
    const fd = new FormData();
    fd.set('file', new Blob([bytes]), 'b.bin');
    fd.set('purpose', 'batch');
    const file = await (await t.api('/api/v1/files', { method: 'POST', body: fd })).json();
    expect(file.purpose).toBe('batch');
    const back = Buffer.from(await (await t.api(`/api/v1/files/${file.id}/content`)).arrayBuffer());
    expect(back.equals(bytes)).toBe(true);
  });

  it('answers 413 to an upload over the limit and keeps nothing', async () => {
    const before = bodies();
    const count = (await (await t.api('/api/v1/files')).json()).data.length;
    const res = await t.api('/api/v1/files', { method: 'POST', body: form(Buffer.alloc(200 * 1024, 'a')) });
    expect(res.status).toBe(413);
    expect((await res.json()).error).toMatchObject({ code: 'file_too_large', param: 'file' });
    expect(bodies()).toEqual(before);
    expect((await (await t.api('/api/v1/files')).json()).data.length).toBe(count);
  });

  it('answers 413 when the size only shows while streaming (chunked, no Content-Length)', async () => {
    const before = bodies();
    const boundary = 'XyZ123';
    const head = `POST /api/v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TEST_TOKEN}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const part = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n${'b'.repeat(100 * 1024)}\r\n--${boundary}--\r\n`);
    const chunked = Buffer.concat([Buffer.from(part.length.toString(16) + '\r\n'), part, Buffer.from('\r\n0\r\n\r\n')]);
    const res = await rawRequest(t.url, head, chunked, false);
    expect(res.status).toBe(413);
    expect(bodies()).toEqual(before);
  });

  it('answers 400 to a half-sent upload and keeps no partial file', async () => {
    const before = bodies();
    const boundary = 'AbC987';
    const start = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="half.jsonl"\r\n\r\n${'{"messages":[]}\n'.repeat(500)}`);
    const head = `POST /api/v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TEST_TOKEN}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    // A complete chunk, then the terminating chunk: the multipart body itself never closes.
    const chunked = Buffer.concat([Buffer.from(start.length.toString(16) + '\r\n'), start, Buffer.from('\r\n0\r\n\r\n')]);
    const res = await rawRequest(t.url, head, chunked, false);
    expect(res.status).toBe(400);
    expect(res.text).toContain('upload_incomplete');
    expect(bodies()).toEqual(before);
  });

  it('keeps no partial file when the client disconnects mid-upload', async () => {
    const before = bodies();
    const boundary = 'Cut0ff';
    const start = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.jsonl"\r\n\r\n${'x'.repeat(10_000)}`);
    const head = `POST /api/v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TEST_TOKEN}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 50000\r\n\r\n`;
    await rawRequest(t.url, head, start, true);
    // The server notices the closed socket asynchronously; a loaded machine may take a while.
    await expect.poll(() => bodies().filter((n) => n.endsWith('.part')), { timeout: 5000 }).toEqual([]);
    expect(bodies()).toEqual(before);
  });

  it('rejects a request that is not multipart with 415, and one without a file with 400', async () => {
    const json = await t.api('/api/v1/files', { method: 'POST', json: { file: 'x' } });
    expect(json.status).toBe(415);
    const fd = new FormData();
    fd.set('purpose', 'fine-tune');
    const none = await t.api('/api/v1/files', { method: 'POST', body: fd });
    expect(none.status).toBe(400);
    expect((await none.json()).error).toMatchObject({ code: 'missing_file', param: 'file' });
  });

  it('checks an uploaded file with the data toolkit', async () => {
    const good = await (await t.api('/api/v1/files', { method: 'POST', body: form(SUPPORT) })).json();
    const report = await (await t.api(`/api/v1/files/${good.id}/check`, { method: 'POST', json: {} })).json();
    expect(report).toMatchObject({ file_id: good.id, trainable: true, format: 'chat', error_count: 0 });
    expect(report.examples).toBeGreaterThanOrEqual(10);
    const bad = await (await t.api('/api/v1/files', { method: 'POST', body: form('{"messages": [{"role": "user"}]}\nnot json\n') })).json();
    const badReport = await (await t.api(`/api/v1/files/${bad.id}/check`, { method: 'POST', json: { validation_split: 0 } })).json();
    expect(badReport.trainable).toBe(false);
    expect(badReport.errors.map((e: { line: number }) => e.line)).toEqual(expect.arrayContaining([1, 2]));
    const wrong = await t.api(`/api/v1/files/${bad.id}/check`, { method: 'POST', json: { validation_split: 3 } });
    expect(wrong.status).toBe(400);
    expect((await wrong.json()).error.param).toBe('validation_split');
  });

  it('deletes a file, and answers 404 for unknown and malformed IDs', async () => {
    const file = await (await t.api('/api/v1/files', { method: 'POST', body: form('{}\n') })).json();
    const del = await t.api(`/api/v1/files/${file.id}`, { method: 'DELETE' });
    expect(await del.json()).toEqual({ id: file.id, object: 'file', deleted: true });
    expect(bodies()).not.toContain(file.id);
    for (const id of [file.id, '..%2F..%2Fetc%2Fpasswd', 'file-nope']) {
      const res = await t.api(`/api/v1/files/${id}`);
      expect(res.status).toBe(404);
      expect((await res.json()).error.code).toBe('file_not_found');
    }
  });
});

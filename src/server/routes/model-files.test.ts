// A fine-tuned model leaves the server: GET /api/v1/models/:id/download (whole, or a byte range
// so a big download resumes; token in the header only) and POST /api/v1/models/:id/export.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobQueue, type ModelRecord } from '../../jobs/index.ts';
import { writeGgufModel } from '../../trainer/gguf-model.ts';
import { createTinyModel } from '../../trainer/tiny-model.ts';
import { startTestServer, TEST_TOKEN, type TestServer } from '../testing.ts';

describe('/api/v1/models/:id/download and /export', () => {
  let t: TestServer;
  let model: ModelRecord;
  let bytes: Buffer;
  let enc: string;
  beforeAll(async () => {
    t = await startTestServer({ wire: (store) => ({ jobs: new JobQueue(store) }) });
    const jobs = t.server.jobs!;
    const fd = new FormData();
    fd.set('file', new Blob([`${JSON.stringify({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] })}\n`]), 'train.jsonl');
    const fileId = (await (await t.api('/api/v1/files', { method: 'POST', body: fd })).json()).id;
    const job = await jobs.create({ model: 'nodeai-tiny', training_file: fileId, suffix: 'bot', hyperparameters: { n_epochs: 3, batch_size: 2, learning_rate_multiplier: 'auto', learning_rate: 0.001, lora_rank: 4 } });
    const dir = join(t.dataDir, 'jobs', job.id);
    await mkdir(dir, { recursive: true });
    const path = join(dir, 'model.gguf');
    await writeGgufModel(path, createTinyModel({ seed: 3, embeddingLength: 64, blockCount: 1, headCount: 4, headCountKv: 2, feedForwardLength: 128 }));
    bytes = await readFile(path);
    model = await jobs.models.register({ job: { id: job.id, base_model: 'nodeai-tiny', provider: 'local', suffix: 'bot' }, files: { model: path } });
    enc = encodeURIComponent(model.id);
  });
  afterAll(() => t.close());

  it('streams the GGUF with its length and file name, and one byte range at a time', async () => {
    const whole = await t.api(`/api/v1/models/${enc}/download`);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-length')).toBe(String(bytes.length));
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(whole.headers.get('content-disposition')).toBe(`attachment; filename="nodeai-tiny-bot-${model.id.split(':').at(-1)}.gguf"`);
    expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true);

    const part = await t.api(`/api/v1/models/${enc}/download`, { headers: { range: 'bytes=4-11' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 4-11/${bytes.length}`);
    expect(part.headers.get('content-length')).toBe('8');
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(4, 12))).toBe(true);
    const rest = await t.api(`/api/v1/models/${enc}/download`, { headers: { range: `bytes=${bytes.length - 5}-` } });
    expect(Buffer.from(await rest.arrayBuffer()).equals(bytes.subarray(bytes.length - 5))).toBe(true);
    const tail = await t.api(`/api/v1/models/${enc}/download`, { headers: { range: 'bytes=-3' } });
    expect(tail.headers.get('content-range')).toBe(`bytes ${bytes.length - 3}-${bytes.length - 1}/${bytes.length}`);

    const outside = await t.api(`/api/v1/models/${enc}/download`, { headers: { range: `bytes=${bytes.length}-` } });
    expect(outside.status).toBe(416);
    expect(outside.headers.get('content-range')).toBe(`bytes */${bytes.length}`);
    expect((await outside.json()).error.code).toBe('range_not_satisfiable');
  });

  it('lists the model with its GGUF size and the hyperparameters of the job that trained it', async () => {
    const listed = (await (await t.api('/api/v1/models')).json()).data.find((m: { id: string }) => m.id === model.id);
    expect(listed).toMatchObject({ bytes: bytes.length, files: ['model'], hyperparameters: { n_epochs: 3, batch_size: 2, learning_rate: 0.001, lora_rank: 4 } });
    expect(listed.path).toBeUndefined();
    expect((await (await t.api(`/api/v1/models/${enc}`)).json()).bytes).toBe(bytes.length);
  });

  it('needs the token in the Authorization header, as every route does; a token in the URL is not one', async () => {
    const url = `${t.url}/api/v1/models/${enc}/download`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(`${url}?token=${TEST_TOKEN}`)).status).toBe(401);
    expect((await t.api('/api/v1/models/ft:nope:x:y/download')).status).toBe(404);
  });

  it('exports into the data dir and answers with the files and the command line', async () => {
    const res = await t.api(`/api/v1/models/${enc}/export`, { method: 'POST', json: { to: 'gguf', quant: 'q8_0' } });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ object: 'model.export', model: model.id, to: 'gguf', quant: 'q8_0', ollama_created: false });
    expect(body.gguf.startsWith(join(t.dataDir, 'exports'))).toBe(true);
    expect(body.command).toEqual(['llama-server', '-m', body.gguf, '--jinja']);
    expect(body.command_line).toBe(`llama-server -m ${body.gguf} --jinja`);
    expect(body.modelfile_text).toBeNull();
    expect((await readFile(body.gguf)).subarray(0, 4).toString()).toBe('GGUF');
    // The written GGUF comes down through the path the answer names, for a browser with a link ticket.
    expect(body.download).toBe(`/api/v1/models/${enc}/exports/gguf-q8_0`);
    const ticket = await (await t.api('/api/v1/tickets', { method: 'POST', json: { path: body.download } })).json();
    const file = await fetch(t.url + ticket.url);
    expect(file.status).toBe(200);
    expect(Buffer.from(await file.arrayBuffer()).equals(await readFile(body.gguf))).toBe(true);
    expect((await fetch(t.url + ticket.url)).status).toBe(401);
    expect((await t.api(`/api/v1/models/${enc}/exports/gguf-f16`)).status).toBe(404);
    expect((await t.api(`/api/v1/models/${enc}/exports/..`)).status).toBe(404);

    const ollama = await (await t.api(`/api/v1/models/${enc}/export`, { method: 'POST', json: { to: 'ollama', quant: 'f16' } })).json();
    expect(ollama.modelfile_text).toBe(await readFile(ollama.modelfile, 'utf8'));
    expect(ollama.modelfile_text).toMatch(/^FROM \.\/model\.gguf\n/);
    expect(ollama.command_line).toMatch(/^ollama create nodeai-tiny-bot-\w+ -f \S+\/Modelfile$/);
    expect(ollama.download).toBe(`/api/v1/models/${enc}/exports/ollama-f16`);

    const bad = await t.api(`/api/v1/models/${enc}/export`, { method: 'POST', json: { to: 'docker' } });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.param).toBe('to');
    const noAdapter = await t.api(`/api/v1/models/${enc}/export`, { method: 'POST', json: { to: 'ollama', adapter: true } });
    expect(noAdapter.status).toBe(400);
    expect((await noAdapter.json()).error.message).toMatch(/has no LoRA adapter; export it without --adapter/);
  });
});

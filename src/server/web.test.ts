// The canvas in a real browser (Debian's Chromium through playwright-core) against a real
// `nodeai serve`: sign in with the API token, draw File Loader → Fine-Tune → Chat, upload the
// data, run it, watch the loss, read the reply, chat with the new model.
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../store/testing.ts';
import { createApp } from './app.ts';
import { CANVAS_TOKEN, screenshot, startCanvas, type CanvasServer } from './canvas-testing.ts';
import { Engine } from '../engine/index.ts';
import { createNodeRegistry } from '../nodes/index.ts';
import { createStore } from '../store/index.ts';

const JSONL = Array.from({ length: 12 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `What is ${i}+1?` }, { role: 'assistant', content: `${i + 1}.` }] })).join('\n') + '\n';

describe('the canvas', () => {
  let canvas: CanvasServer;
  let dir: string;
  let url: string;
  let page: Page;

  beforeAll(async () => {
    canvas = await startCanvas();
    ({ dir, url } = canvas);
    writeFileSync(join(dir, 'qa.jsonl'), JSONL);
    page = await canvas.browser.newPage({ viewport: { width: 1400, height: 900 } });
  });

  afterAll(async () => {
    await canvas?.close();
  });

  it('signs in with the API token and refuses a wrong one', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.getByLabel('API token').fill('wrong-token-0123456789');
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByText('That token was not accepted').waitFor();
    await page.getByLabel('API token').fill(CANVAS_TOKEN);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByRole('heading', { name: 'Nodes' }).waitFor();
    // The palette lists the registry's node types.
    for (const name of ['File Loader', 'Data Loader', 'Fine-Tune', 'Chat']) await page.locator('.palette-item', { hasText: name }).waitFor();
    expect(errors).toEqual([]);
  });

  it('refuses to run a workflow that is not valid yet, and says why', async () => {
    await page.getByRole('button', { name: 'File Loader → Fine-Tune → Chat' }).click();
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/file_id|path/);
  });

  it('uploads the data, trains, shows the loss live, replies, and chats with the new model', { timeout: 120_000 }, async () => {
    await page.getByTestId('node-file_loader').click();
    await page.getByTestId('upload').setInputFiles(join(dir, 'qa.jsonl'));
    await expect.poll(() => page.locator('#field-file_id').inputValue()).toMatch(/^file-/);
    await page.getByTestId('node-finetune').click();
    await page.locator('#field-epochs').fill('2');
    // Typed key by key, as a person does: "0." must stay "0." on the way to "0.25".
    await page.locator('#field-validation_split').pressSequentially('0.25');
    expect(await page.locator('#field-validation_split').inputValue()).toBe('0.25');
    await page.getByRole('button', { name: 'Run', exact: true }).click();

    const status = page.getByTestId('run-status');
    await expect.poll(() => status.textContent(), { timeout: 90_000, interval: 250 }).toMatch(/^(succeeded|failed|cancelled)$/);
    expect(await status.textContent()).toBe('succeeded');
    // The job's metrics reached the chart live (two epochs: several steps).
    expect(Number(await page.locator('.loss-chart').getAttribute('data-points'))).toBeGreaterThanOrEqual(2);
    expect(await page.getByTestId('ft-model').textContent()).toMatch(/^ft:nodeai-tiny::/);
    expect(await page.getByTestId('node-status').allTextContents()).toEqual(['succeeded', 'succeeded', 'succeeded']);
    await page.getByTestId('chat-reply').waitFor({ state: 'attached' });

    await page.getByLabel('Message').fill('What is 2+1?');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.locator('.msg.assistant').waitFor();
    expect(await page.locator('.msg.user').textContent()).toBe('What is 2+1?');

    expect(statSync(await screenshot(page, 'trained-1400')).size).toBeGreaterThan(10_000);
  });

  it('keeps the drawing and the run across a page reload, with the loss curve so far', { timeout: 120_000 }, async () => {
    await page.getByTestId('node-finetune').click();
    // Long enough on nodeai-tiny to reload mid-run, short enough to wait for its end.
    await page.locator('#field-epochs').fill('12');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await expect.poll(async () => Number(await page.locator('.loss-chart').getAttribute('data-points').catch(() => '0')), { timeout: 60_000 }).toBeGreaterThanOrEqual(3);
    const before = Number(await page.locator('.loss-chart').getAttribute('data-points'));
    await page.reload();
    // Same three nodes, the same run, and at least the points seen before the reload.
    await page.getByTestId('node-finetune').waitFor();
    expect(await page.locator('.flow-node').count()).toBe(3);
    await expect.poll(async () => Number(await page.locator('.loss-chart').getAttribute('data-points').catch(() => '0')), { timeout: 30_000 }).toBeGreaterThanOrEqual(before);
    await expect.poll(() => page.getByTestId('run-status').textContent(), { timeout: 90_000, interval: 250 }).toBe('succeeded');

    // Saved on the server, listed, and opened again.
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved "File Loader → Fine-Tune → Chat".').waitFor();
    await page.getByRole('button', { name: 'Workflow ▾' }).click();
    await page.getByRole('menuitem', { name: 'Open…' }).click();
    await page.getByRole('dialog', { name: 'Open a workflow' }).getByRole('cell', { name: 'File Loader → Fine-Tune → Chat', exact: true }).waitFor();
  });
});

// In-process requests name a loopback host, as a browser on this machine does (the host check).
const LOCAL = { headers: { Host: '127.0.0.1' } };

describe('serving the canvas', () => {
  it('says how to build it when web/dist is missing, and serves nothing outside its assets', async () => {
    const dataDir = tempDir('nodeai-web-');
    const store = await createStore({ dataDir, databaseUrl: '' });
    const engine = new Engine({ store, registry: createNodeRegistry() });
    const missing = createApp({ store, engine, token: null, webDir: join(dataDir, 'no-such-dir') });
    const served = createApp({ store, engine, token: null });
    try {
      const res = await missing.app.request('/', LOCAL);
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('npm run build:web');
      const page = await served.app.request('/', LOCAL);
      expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
      for (const path of ['/assets/..%2F..%2Fpackage.json', '/assets/x.exe', '/assets/nope.js']) expect((await served.app.request(path, LOCAL)).status).toBe(404);
      // Scripts go out compressed to a browser that takes it, byte for byte the same once unpacked.
      const script = /src="\/assets\/([\w.-]+\.js)"/.exec(await page.text())![1];
      const plain = Buffer.from(await (await served.app.request(`/assets/${script}`, LOCAL)).arrayBuffer());
      const br = await served.app.request(`/assets/${script}`, { headers: { ...LOCAL.headers, 'Accept-Encoding': 'gzip, deflate, br' } });
      expect(br.headers.get('content-encoding')).toBe('br');
      const brBody = Buffer.from(await br.arrayBuffer());
      expect(brBody.length).toBeLessThan(plain.length / 2);
      expect(brotliDecompressSync(brBody).equals(plain)).toBe(true);
      const gz = await served.app.request(`/assets/${script}`, { headers: { ...LOCAL.headers, 'Accept-Encoding': 'gzip' } });
      expect(gz.headers.get('content-encoding')).toBe('gzip');
      expect(gunzipSync(Buffer.from(await gz.arrayBuffer())).equals(plain)).toBe(true);
      expect(gz.headers.get('vary')).toBe('Accept-Encoding');
    } finally {
      await missing.close();
      await served.close();
      engine.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

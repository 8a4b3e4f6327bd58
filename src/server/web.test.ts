// The canvas in a real browser (Debian's Chromium through playwright-core) against a real
// `nodeai serve`: sign in with the API token, draw File Loader → Fine-Tune → Chat, upload the
// data, run it, watch the loss, read the reply, chat with the new model.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../store/testing.ts';
import { createApp } from './app.ts';
import { Engine } from '../engine/index.ts';
import { createNodeRegistry } from '../nodes/index.ts';
import { createStore } from '../store/index.ts';
import { DEFAULT_WEB_DIR } from './web.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'nodeai.js');
const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'canvas-test-token-0123456789';
const TINY = JSON.stringify({ embeddingLength: 32, blockCount: 1, headCount: 2, headCountKv: 1, feedForwardLength: 64 });
const JSONL = Array.from({ length: 12 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `What is ${i}+1?` }, { role: 'assistant', content: `${i + 1}.` }] })).join('\n') + '\n';

describe('the canvas', () => {
  let dir: string;
  let server: ChildProcess;
  let url: string;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    expect(existsSync(join(DEFAULT_WEB_DIR, 'index.html')), 'web/dist is built by npm ci (npm run build:web)').toBe(true);
    dir = tempDir('nodeai-canvas-');
    writeFileSync(join(dir, 'qa.jsonl'), JSONL);
    server = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', join(dir, 'data')], {
      env: { ...process.env, NODEAI_API_TOKEN: TOKEN, NODEAI_TEST_TINY_CONFIG: TINY, DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server.stdout!.on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      server.on('exit', (code) => reject(new Error(`nodeai serve exited with ${code}`)));
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    server?.kill('SIGTERM');
    if (server) await new Promise((r) => server.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs in with the API token and refuses a wrong one', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.getByLabel('API token').fill('wrong-token-0123456789');
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByText('That token was not accepted').waitFor();
    await page.getByLabel('API token').fill(TOKEN);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByRole('heading', { name: 'Nodes' }).waitFor();
    // The palette lists the registry's node types.
    for (const name of ['File Loader', 'Data Loader', 'Fine-Tune', 'Chat']) await page.locator('.palette-item', { hasText: name }).waitFor();
    expect(errors).toEqual([]);
  });

  it('refuses to run a workflow that is not valid yet, and says why', async () => {
    await page.getByRole('button', { name: 'New: File Loader → Fine-Tune → Chat' }).click();
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

    const shot = join(dir, 'canvas.png');
    await page.screenshot({ path: shot });
    expect(statSync(shot).size).toBeGreaterThan(10_000);
  });

  it('keeps the drawing and the run across a page reload, with the loss curve so far', { timeout: 120_000 }, async () => {
    await page.getByTestId('node-finetune').click();
    await page.locator('#field-epochs').fill('40');
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
    await page.getByText(/^Saved as wf-/).waitFor();
    const options = await page.getByLabel('Open a saved workflow').locator('option').allTextContents();
    expect(options).toContain('File Loader → Fine-Tune → Chat');
  });
});

describe('serving the canvas', () => {
  it('says how to build it when web/dist is missing, and serves nothing outside its assets', async () => {
    const dataDir = tempDir('nodeai-web-');
    const store = await createStore({ dataDir, databaseUrl: '' });
    const engine = new Engine({ store, registry: createNodeRegistry() });
    const missing = createApp({ store, engine, token: null, webDir: join(dataDir, 'no-such-dir') });
    const served = createApp({ store, engine, token: null });
    try {
      const res = await missing.app.request('/');
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('npm run build:web');
      const page = await served.app.request('/');
      expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
      for (const path of ['/assets/..%2F..%2Fpackage.json', '/assets/x.exe', '/assets/nope.js']) expect((await served.app.request(path)).status).toBe(404);
    } finally {
      await missing.close();
      await served.close();
      engine.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

// The canvas as a product, in Debian's Chromium against a real `nodeai serve`: workflows kept
// without data loss (New asks, a new ID, rename, duplicate, delete, import, export, templates),
// errors where they belong, provider-aware settings and secrets, the data check, the monitor,
// editor habits, jobs and models — with screenshots under web/screenshots/ and axe-core checks.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { axeViolations, CANVAS_TOKEN, screenshot, signIn, startCanvas, type CanvasServer } from './canvas-testing.ts';

const JSONL = Array.from({ length: 12 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `What is ${i}+1?` }, { role: 'assistant', content: `${i + 1}.` }] })).join('\n') + '\n';
const BAD_JSONL = [JSONL.split('\n')[0], '{"messages": [{"role": "user", "content": "no answer"}]}', 'not json at all', JSONL.split('\n')[1]].join('\n') + '\n';

describe('the canvas as a product', () => {
  let s: CanvasServer;
  let page: Page;
  const requested: string[] = [];
  const errors: string[] = [];
  const api = async (path: string, init: { method?: string; body?: unknown } = {}) => {
    const res = await fetch(s.url + path, { method: init.method ?? 'GET', headers: { Authorization: `Bearer ${CANVAS_TOKEN}`, 'Content-Type': 'application/json' }, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
    return res.json();
  };
  const workflows = async () => ((await api('/api/v1/workflows')) as { data: Array<{ id: string; name: string }> }).data;
  const menu = async (item: string) => {
    await page.getByRole('button', { name: 'Workflow ▾' }).click();
    await page.getByRole('menuitem', { name: item }).click();
  };
  const nodeCount = () => page.locator('.flow-node').count();
  const mod = process.platform === 'darwin' ? 'Meta' : 'Control';

  beforeAll(async () => {
    s = await startCanvas();
    writeFileSync(join(s.dir, 'qa.jsonl'), JSONL);
    writeFileSync(join(s.dir, 'bad.jsonl'), BAD_JSONL);
    page = await s.browser.newPage({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
    page.on('request', (r) => requested.push(r.url()));
    page.on('pageerror', (e) => errors.push(e.message));
    await signIn(page, s.url);
  });

  afterAll(async () => {
    await s?.close();
  });

  it('never loses a workflow: New asks, starts a new ID, and Save never overwrites the one before', { timeout: 60_000 }, async () => {
    await page.getByRole('button', { name: 'File Loader → Fine-Tune → Chat' }).click();
    expect(await nodeCount()).toBe(3);
    await expect.poll(() => page.getByTestId('save-state').textContent()).toBe('● Unsaved');
    await page.keyboard.press(`${mod}+s`);
    await page.getByTestId('notice').getByText('Saved "File Loader → Fine-Tune → Chat".').waitFor();
    expect(await page.getByTestId('save-state').textContent()).toBe('Saved');
    const [first] = await workflows();

    // An unsaved rename, then New: it asks; Cancel keeps everything.
    await page.getByLabel('Workflow name').fill('Support bot v1');
    expect(await page.getByTestId('save-state').textContent()).toBe('● Unsaved');
    await menu('New');
    const dialog = page.getByRole('dialog', { name: 'Unsaved changes' });
    await dialog.waitFor();
    await screenshot(page, 'new-asks-1440');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect(await nodeCount()).toBe(3);
    expect(await page.getByLabel('Workflow name').inputValue()).toBe('Support bot v1');

    // Discard: an empty canvas, and the next Save creates a second workflow.
    await menu('New');
    await page.getByRole('dialog', { name: 'Unsaved changes' }).getByRole('button', { name: 'Discard changes' }).click();
    expect(await nodeCount()).toBe(0);
    expect(await page.getByLabel('Workflow name').inputValue()).toBe('Untitled workflow');
    await page.locator('.palette-item', { hasText: 'Data Loader' }).focus();
    await page.keyboard.press('Enter');
    expect(await nodeCount()).toBe(1);
    await page.getByLabel('Workflow name').fill('Second');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByTestId('notice').getByText('Saved "Second".').waitFor();
    const after = await workflows();
    expect(after).toHaveLength(2);
    // The first workflow is as it was saved: its name and its three nodes.
    const kept = (await api(`/api/v1/workflows/${first.id}`)) as { name: string; definition: { nodes: unknown[] } };
    expect(kept.name).toBe('File Loader → Fine-Tune → Chat');
    expect(kept.definition.nodes).toHaveLength(3);
  });

  it('opens, duplicates, deletes, exports and imports workflows', { timeout: 60_000 }, async () => {
    await menu('Open…');
    const open = page.getByRole('dialog', { name: 'Open a workflow' });
    await open.getByRole('button', { name: 'Open File Loader → Fine-Tune → Chat' }).click();
    await expect.poll(nodeCount).toBe(3);
    expect(await page.getByTestId('save-state').textContent()).toBe('Saved');

    await menu('Duplicate');
    await page.getByTestId('notice').getByText('Duplicated as "File Loader → Fine-Tune → Chat (copy)"').waitFor();
    expect((await workflows()).map((w) => w.name).sort()).toEqual(['File Loader → Fine-Tune → Chat', 'File Loader → Fine-Tune → Chat (copy)', 'Second']);

    await menu('Delete');
    await page.getByRole('dialog', { name: 'Delete workflow' }).getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByTestId('notice').getByText('Deleted "File Loader → Fine-Tune → Chat (copy)".').waitFor();
    expect((await workflows()).map((w) => w.name).sort()).toEqual(['File Loader → Fine-Tune → Chat', 'Second']);
    expect(await nodeCount()).toBe(0);

    await menu('Open…');
    await page.getByRole('dialog', { name: 'Open a workflow' }).getByRole('button', { name: 'Open File Loader → Fine-Tune → Chat' }).click();
    await expect.poll(nodeCount).toBe(3);
    const download = page.waitForEvent('download');
    await menu('Export JSON');
    const file = await (await download).path();
    const exported = JSON.parse(readFileSync(file, 'utf8'));
    expect(exported).toMatchObject({ name: 'File Loader → Fine-Tune → Chat', nodes: [{ type: 'file_loader' }, { type: 'finetune' }, { type: 'chat' }] });
    expect(exported.edges).toHaveLength(2);

    const imported = join(s.dir, 'imported.json');
    writeFileSync(imported, JSON.stringify({ ...exported, name: 'Imported bot' }));
    await page.getByTestId('import').setInputFiles(imported);
    await page.getByTestId('notice').getByText('Imported "Imported bot" (not saved yet).').waitFor();
    expect(await page.getByTestId('save-state').textContent()).toBe('● Unsaved');
    await page.keyboard.press(`${mod}+s`);
    await page.getByTestId('notice').getByText('Saved "Imported bot".').waitFor();
    expect(await workflows()).toHaveLength(3);

    const broken = join(s.dir, 'broken.json');
    writeFileSync(broken, '{"nodes": 3}');
    await page.getByTestId('import').setInputFiles(broken);
    await page.getByTestId('notice').getByText('broken.json is not a NodeAI workflow: it needs "nodes" and "edges" lists.').waitFor();
  });

  it('opens a template with its data uploaded and checked', { timeout: 60_000 }, async () => {
    await menu('Templates…');
    const gallery = page.getByRole('dialog', { name: 'Templates' });
    await gallery.getByRole('heading', { name: 'Legal Q&A assistant' }).waitFor();
    await screenshot(page, 'templates-1440');
    expect(await axeViolations(page)).toEqual([]);
    await gallery.getByRole('button', { name: 'Use Customer support bot', exact: true }).click();
    await page.getByTestId('notice').getByText('Opened the template "Customer support bot"').waitFor();
    expect(await nodeCount()).toBe(3);
    await page.getByTestId('node-file_loader').click();
    expect(await page.locator('#field-file_id').inputValue()).toMatch(/^file-/);
    const panel = page.getByTestId('data-panel');
    await panel.waitFor({ timeout: 30_000 });
    expect(await panel.getByTestId('data-examples').textContent()).toMatch(/^\d[\d,]* valid of \d[\d,]*$/);
    expect(await panel.textContent()).toContain('ready to train');
    // Tokens per example as a histogram whose bars hold every valid example once.
    const bars = await panel.getByTestId('token-histogram').locator('li').allTextContents();
    expect(bars.length).toBeGreaterThan(1);
    expect(bars.every((b) => /^\d[\d,]*(–\d[\d,]*)? tokens: \d+ examples?$/.test(b))).toBe(true);
    const valid = Number(/^([\d,]+) valid/.exec((await panel.getByTestId('data-examples').textContent()) ?? '')![1].replace(/,/g, ''));
    expect(bars.reduce((sum, b) => sum + Number(/: (\d+) example/.exec(b)![1]), 0)).toBe(valid);
    await screenshot(page, 'template-data-check-1440');
  });

  it('shows a failing data check on the File Loader, every issue with line, code and hint, filterable', { timeout: 60_000 }, async () => {
    await page.getByTestId('upload').setInputFiles(join(s.dir, 'bad.jsonl'));
    const panel = page.getByTestId('data-panel');
    await expect.poll(() => panel.textContent(), { timeout: 30_000 }).toContain('cannot train yet');
    const items = panel.locator('.data-issues li');
    expect(await items.count()).toBeGreaterThanOrEqual(2);
    const texts = await items.allTextContents();
    expect(texts.some((t) => /^line 3 /.test(t))).toBe(true);
    expect(texts.every((t) => /line \d+|file/.test(t))).toBe(true);
    await panel.getByLabel('Filter issues').fill('line 3');
    await expect.poll(() => items.count()).toBe(1);
    // The File Loader carries the failure, not the Fine-Tune node.
    await expect.poll(() => page.getByTestId('node-file_loader').getByTestId('node-message').textContent()).toMatch(/^Data check: \d+ error/);
    expect(await page.getByTestId('node-finetune').getByTestId('node-message').count()).toBe(0);
    await screenshot(page, 'data-check-failing-1440');
  });

  it('puts schema errors on the field in plain words, checks wiring while connecting, labels ports and arrows edges', { timeout: 60_000 }, async () => {
    await page.getByTestId('node-finetune').click();
    await page.locator('#field-epochs').fill('0');
    const fieldError = page.locator('#field-epochs-error');
    await expect.poll(() => fieldError.textContent().catch(() => ''), { timeout: 10_000 }).toBe('Epochs must be at least 1.');
    expect(await page.locator('#field-epochs').getAttribute('aria-invalid')).toBe('true');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const text = (await alert.textContent()) ?? '';
    expect(text).toContain('Fine-Tune: Epochs must be at least 1.');
    expect(text).not.toMatch(/finetune-[a-z0-9]{6,}|config\.epochs|Too small/);
    await screenshot(page, 'field-error-1440');
    await page.locator('#field-epochs').fill('1');

    // Ports are labelled and edges end in arrows.
    const ft = page.getByTestId('node-finetune');
    expect(await ft.locator('.port.in').first().textContent()).toBe('data');
    expect(await ft.locator('.port.out').allTextContents()).toEqual(expect.arrayContaining(['data', 'fine_tuned_model', 'job_id']));
    expect(await page.locator('.react-flow__edge path[marker-end]').count()).toBeGreaterThanOrEqual(2);

    // A second edge into Fine-Tune's single "data" input is refused while connecting, and why is said.
    await page.locator('.palette-item', { hasText: 'Data Loader' }).click();
    const loader = page.getByTestId('node-data_loader').last();
    const from = await loader.locator('.react-flow__handle.source').first().boundingBox();
    const to = await ft.locator('.react-flow__handle.target').first().boundingBox();
    await page.mouse.move(from!.x + from!.width / 2, from!.y + from!.height / 2);
    await page.mouse.down();
    await page.mouse.move(to!.x + to!.width / 2, to!.y + to!.height / 2, { steps: 8 });
    await page.mouse.up();
    await page.getByTestId('notice').getByText(/input "data" takes one edge and already has one from File Loader/).waitFor();
    expect(await page.locator('.react-flow__edge').count()).toBe(2);
    // Undo takes the Data Loader away again.
    await page.locator('.react-flow__pane').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press(`${mod}+z`);
    await expect.poll(nodeCount).toBe(3);
  });

  it('shows the settings of the chosen provider, in words, with keys from the Secrets screen only', { timeout: 60_000 }, async () => {
    await page.getByTestId('node-finetune').click();
    const side = page.getByRole('complementary', { name: 'Settings' });
    expect(await side.locator('label').allTextContents()).toEqual(expect.arrayContaining(['Provider', 'Base model', 'Epochs', 'LoRA rank']));
    expect(await side.getByText('API key', { exact: true }).count()).toBe(0);
    expect(await side.getByText(/CLI only/).count()).toBe(0);
    // Base models from the server's catalogue, the built-in one first.
    const base = page.locator('#field-base_model');
    expect(await base.evaluate((e) => e.tagName)).toBe('SELECT');
    const options = await base.locator('option').allTextContents();
    expect(options[0]).toMatch(/^nodeai-tiny/);
    expect(options.some((o) => /Qwen2\.5 0\.5B.*parameters/i.test(o))).toBe(true);
    await page.locator('#field-provider').selectOption('openai');
    expect(await side.locator('label').allTextContents()).toEqual(expect.arrayContaining(['API key', 'Base URL']));
    expect(await side.getByText('LoRA rank', { exact: true }).count()).toBe(0);
    // The data check prices the file for the provider's model; a model it does not know leaves the
    // data checked and says so, without marking the File Loader for it.
    await page.locator('#field-base_model').fill('gpt-4o-mini');
    await page.getByTestId('node-file_loader').click();
    await expect.poll(() => page.getByTestId('data-cost').textContent(), { timeout: 15_000 }).toMatch(/^about \$\d+\.\d\d · [\d,]+ tokens over \d+ epochs \(gpt-4o-mini-2024-07-18\)$/);
    await page.getByTestId('node-finetune').click();
    await page.locator('#field-base_model').fill('my-own-model');
    await page.getByTestId('node-file_loader').click();
    await expect.poll(() => page.getByTestId('data-cost').textContent(), { timeout: 15_000 }).toMatch(/^No cost for my-own-model: Unknown model 'my-own-model'/);
    expect(await page.getByTestId('node-file_loader').getByTestId('node-message').textContent()).not.toContain('my-own-model');
    await page.getByTestId('node-finetune').click();
    // Back to the template's base model.
    await page.locator('#field-base_model').fill('nodeai-tiny');

    const secret = 'sk-test-never-shown-0123456789';
    await page.getByRole('button', { name: 'Keys…' }).click();
    const secrets = page.getByRole('dialog', { name: 'Secrets' });
    await secrets.getByLabel('Value').fill(secret);
    await secrets.getByLabel('Other hosts it may be sent to').fill('gpu-box.lan:8787');
    await secrets.getByRole('button', { name: 'Add' }).click();
    await secrets.getByText('Stored OPENAI_API_KEY.').waitFor();
    await secrets.getByRole('cell', { name: 'OPENAI_API_KEY', exact: true }).waitFor();
    await secrets.getByRole('cell', { name: 'gpu-box.lan:8787' }).waitFor();
    expect(await secrets.getByLabel('Value').inputValue()).toBe('');
    await screenshot(page, 'secrets-1440');
    expect(await axeViolations(page)).toEqual([]);
    await secrets.getByRole('button', { name: 'Replace' }).click();
    await secrets.getByLabel('Value').fill(secret + '-2');
    await secrets.getByRole('button', { name: 'Replace' }).last().click();
    await secrets.getByText('Stored OPENAI_API_KEY.').waitFor();
    await secrets.getByRole('button', { name: 'Close Secrets' }).click();
    await page.locator('#field-api_key').selectOption('OPENAI_API_KEY');
    await expect.poll(() => page.evaluate(() => (globalThis as any).localStorage.getItem('nodeai.draft') ?? '')).toContain('"api_key":"$secret:OPENAI_API_KEY"');
    const storage = await page.evaluate(() => JSON.stringify((globalThis as any).localStorage));
    expect(storage).not.toContain(secret);
    expect(await page.content()).not.toContain(secret);
    await screenshot(page, 'settings-openai-1440');
    await page.locator('#field-provider').selectOption('local');
  });

  it('falls back to a typed base model on a server without a model catalogue', { timeout: 60_000 }, async () => {
    // An older server: the catalogue route answers 404.
    await page.route('**/api/v1/models/catalog', (route) => route.fulfill({ status: 404, contentType: 'application/json', body: JSON.stringify({ error: { message: 'No route GET /api/v1/models/catalog.' } }) }));
    await page.reload();
    await page.getByTestId('node-finetune').click();
    expect(await page.locator('#field-base_model').evaluate((e) => e.tagName)).toBe('INPUT');
    expect(await page.locator('#field-base_model').inputValue()).toBe('nodeai-tiny');
    await page.unroute('**/api/v1/models/catalog');
    await page.reload();
    await page.getByTestId('node-finetune').click();
    await expect.poll(() => page.locator('#field-base_model').evaluate((e) => e.tagName)).toBe('SELECT');
  });

  it('follows the editor habits: search, groups, undo/redo, copy/paste, select-all, keyboard and focus ring', { timeout: 60_000 }, async () => {
    // Straight after a reload, with the model catalogue answering late: every edit is one undo step
    // even when the next key comes before anything settled, and neither the restored draft nor the
    // late answer is a step (the test used to wait for the network to be idle to get this).
    await page.route('**/api/v1/models/catalog', async (route) => (await new Promise((r) => setTimeout(r, 1000)), route.continue()));
    const lateCatalogue = page.waitForResponse('**/api/v1/models/catalog');
    await page.reload();
    await page.getByTestId('node-finetune').waitFor();
    const before = await nodeCount();
    await page.locator('.palette-item', { hasText: 'Chat' }).focus();
    await page.keyboard.press(' ');
    await expect.poll(nodeCount).toBe(before + 1);
    await page.locator('.react-flow__pane').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press(`${mod}+z`);
    await expect.poll(nodeCount).toBe(before);
    await page.keyboard.press(`${mod}+Shift+z`);
    await expect.poll(nodeCount).toBe(before + 1);
    await page.keyboard.press(`${mod}+a`);
    await expect.poll(() => page.locator('.react-flow__node.selected').count()).toBe(before + 1);
    await page.keyboard.press(`${mod}+c`);
    await page.keyboard.press(`${mod}+v`);
    await expect.poll(nodeCount).toBe(2 * (before + 1));
    await page.keyboard.press(`${mod}+z`);
    await expect.poll(nodeCount).toBe(before + 1);
    await page.keyboard.press(`${mod}+z`);
    await expect.poll(nodeCount).toBe(before);
    await lateCatalogue;
    await page.unroute('**/api/v1/models/catalog');
    await page.waitForTimeout(400);
    await page.keyboard.press(`${mod}+z`);
    await page.waitForTimeout(200);
    expect(await nodeCount()).toBe(before);

    await page.getByLabel('Search nodes').fill('chat');
    expect(await page.locator('.palette-item').allTextContents()).toEqual(['Chat']);
    await page.getByLabel('Search nodes').fill('');
    expect(await page.getByRole('complementary', { name: 'Nodes' }).getByRole('group').evaluateAll((gs) => gs.map((g) => g.getAttribute('aria-label')))).toEqual(['AI', 'Data']);

    // A node reached with the keyboard opens its settings, also when it is already selected
    // (here with all the others, so the keypress changes no selection).
    await page.locator('.react-flow__pane').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press(`${mod}+a`);
    await expect.poll(() => page.locator('.react-flow__node.selected').count()).toBe(before);
    await page.locator('.react-flow__node', { has: page.getByTestId('node-chat') }).first().focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Chat settings' }).waitFor();

    // A visible focus ring for keyboard users.
    await page.getByLabel('Search nodes').focus();
    await page.keyboard.press('Tab');
    const outline = await page.evaluate(() => (globalThis as any).getComputedStyle((globalThis as any).document.activeElement).outlineStyle);
    expect(outline).toBe('solid');
  });

  it('fits 1024×700 without a wrapping header, and follows a dark system theme', { timeout: 60_000 }, async () => {
    await page.setViewportSize({ width: 1024, height: 700 });
    const header = page.locator('header').first();
    expect(await header.evaluate((h) => ({ height: h.getBoundingClientRect().height, overflow: h.scrollWidth > h.clientWidth }))).toEqual({ height: 48, overflow: false });
    await screenshot(page, 'canvas-1024');
    await page.emulateMedia({ colorScheme: 'dark' });
    const bg = await page.evaluate(() => (globalThis as any).getComputedStyle((globalThis as any).document.body).backgroundColor);
    expect(bg).toBe('rgb(21, 24, 30)');
    await screenshot(page, 'canvas-dark-1024');
    expect(await axeViolations(page)).toEqual([]);
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1440, height: 900 });
    expect(await axeViolations(page)).toEqual([]);
  });

  it('shows a run that fails at once as failed, keeps the log across a reload, and never puts the token in a URL', { timeout: 60_000 }, async () => {
    await page.getByTestId('node-file_loader').click();
    // A well-formed ID of a file that is not there: the run starts, and fails in milliseconds.
    await page.locator('#field-file_id').fill('file-AAAAAAAAAAAAAAAAAAAAAAAA');
    await page.getByTestId('node-finetune').click();
    await page.locator('#field-epochs').fill('1');
    await page.waitForTimeout(600);
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await expect.poll(() => page.getByTestId('run-status').textContent(), { timeout: 15_000 }).toBe('failed');
    expect(await page.getByRole('button', { name: 'Run', exact: true }).isEnabled()).toBe(true);
    await expect.poll(() => page.getByTestId('node-file_loader').getByTestId('node-message').textContent()).toMatch(/is not in this store/);
    const log = await page.getByLabel('Log').textContent();
    expect(log).toMatch(/Run failed/);
    await page.reload();
    await expect.poll(() => page.getByLabel('Log').textContent(), { timeout: 15_000 }).toBe(log);
    expect(requested.filter((u) => /access_token|canvas-test-token/.test(u))).toEqual([]);
    expect(requested.some((u) => u.includes('/api/v1/events?run_id='))).toBe(true);
  });

  it('trains with the live monitor, offers to cancel the job on Stop, and lists jobs and models', { timeout: 180_000 }, async () => {
    await page.getByTestId('node-file_loader').click();
    await page.getByTestId('upload').setInputFiles(join(s.dir, 'qa.jsonl'));
    await expect.poll(() => page.locator('#field-file_id').inputValue()).not.toBe('file-AAAAAAAAAAAAAAAAAAAAAAAA');
    await page.getByTestId('node-finetune').click();
    await page.locator('#field-epochs').fill('2');
    await page.locator('#field-validation_split').fill('0.25');
    await page.waitForTimeout(500);
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    // The panel shows the previous (failed) run until this one has started.
    await expect.poll(() => page.getByTestId('run-status').textContent(), { timeout: 30_000, interval: 50 }).not.toBe('failed');
    await expect.poll(() => page.getByTestId('run-status').textContent(), { timeout: 120_000, interval: 250 }).toMatch(/^(succeeded|failed|cancelled)$/);
    expect(await page.getByTestId('run-status').textContent(), (await page.getByLabel('Log').textContent()) ?? '').toBe('succeeded');
    const stats = (await page.getByTestId('run-stats').textContent()) ?? '';
    expect(stats).toMatch(/Step\d+ \/ \d+/);
    expect(stats).toMatch(/Speed[\d,]+ tokens\/s/);
    expect(stats).toMatch(/Learning rate/);
    // The evaluation the Fine-Tune node made of base vs fine-tuned, in one line.
    expect(await page.getByTestId('run-evaluation').textContent()).toMatch(/^On 3 validation examples: exact match [\d.]+% → [\d.]+%, loss [\d.]+ → [\d.]+\. see the answers$/);
    // Hovering the chart shows the values at that step.
    const chart = page.locator('.loss-chart .u-over');
    const box = await chart.boundingBox();
    await page.mouse.move(box!.x + box!.width * 0.6, box!.y + box!.height / 2);
    await expect.poll(() => page.locator('.loss-chart .u-legend .u-series').nth(1).locator('.u-value').textContent()).toMatch(/^\d+\.\d{4}$/);
    await page.getByLabel('validation', { exact: true }).uncheck();
    await screenshot(page, 'monitor-1440');
    await page.setViewportSize({ width: 1024, height: 700 });
    await screenshot(page, 'monitor-1024');
    await page.setViewportSize({ width: 1440, height: 900 });

    // Jobs: the one that just ran, its curve, checkpoints and events.
    await page.getByRole('button', { name: 'Jobs', exact: true }).click();
    const jobs = page.getByRole('dialog', { name: 'Training jobs' });
    await jobs.getByRole('row').nth(1).getByRole('button').click();
    await expect.poll(() => jobs.getByTestId('job-status').textContent()).toBe('succeeded');
    await jobs.getByRole('heading', { name: 'Checkpoints' }).waitFor();
    await screenshot(page, 'jobs-1440');
    expect(await axeViolations(page)).toEqual([]);
    await jobs.getByRole('button', { name: 'Close Training jobs' }).click();

    // Models: rename the new model, then put it in a Chat node.
    await page.getByRole('button', { name: 'Models', exact: true }).click();
    const models = page.getByRole('dialog', { name: 'Models' });
    await models.getByRole('button', { name: 'Rename' }).first().click();
    await models.getByLabel('New name').fill('arithmetic');
    await models.getByLabel('New name').press('Enter');
    await models.getByText('arithmetic', { exact: true }).waitFor();
    expect(await models.getByTestId('model-evaluation').first().textContent()).toMatch(/^exact match [\d.]+% → [\d.]+%, loss [\d.]+ → [\d.]+ \(3 examples\)$/);
    // The GGUF comes down as a file, and it is one.
    const gguf = page.waitForEvent('download');
    await models.getByRole('button', { name: 'Download the GGUF of arithmetic' }).click();
    const download = await gguf;
    expect(readFileSync(await download.path()).subarray(0, 4).toString('latin1')).toBe('GGUF');
    // Through a plain link with a single-use ticket (streamed to disk, not fetched into the page's
    // memory), which the next try cannot use again.
    expect(download.url()).toMatch(/\/api\/v1\/models\/[^/]+\/files\/model\?ticket=tkt-[\w-]+$/);
    expect(requested.filter((u) => u.includes('/files/model'))).toEqual([]);
    expect((await fetch(download.url())).status).toBe(401);
    await screenshot(page, 'models-1440');
    expect(await axeViolations(page)).toEqual([]);
    const chats = await page.getByTestId('node-chat').count();
    await models.getByRole('button', { name: 'Chat' }).first().click();
    await expect.poll(() => page.getByTestId('node-chat').count()).toBe(chats + 1);
    await page.keyboard.press('Delete');
    await expect.poll(() => page.getByTestId('node-chat').count()).toBe(chats);

    // The fine-tuned model and its base answer the same prompt side by side.
    await page.getByRole('button', { name: 'compare with the base' }).click();
    const compare = page.getByRole('dialog', { name: 'Compare models' });
    expect(await compare.getByLabel('Left model').inputValue()).toBe('nodeai-tiny');
    expect(await compare.getByLabel('Right model').inputValue()).toMatch(/^ft:nodeai-tiny:/);
    await compare.getByLabel('Prompt', { exact: true }).fill('What is 2+1?');
    await compare.getByRole('button', { name: 'Ask both' }).click();
    await compare.getByTestId('answer-left').waitFor({ timeout: 30_000 });
    for (const side of ['left', 'right']) {
      const answer = compare.getByTestId(`answer-${side}`);
      expect(await answer.getAttribute('class')).not.toContain('error');
      expect(((await answer.textContent()) ?? '').length).toBeGreaterThan(0);
    }
    // The evaluation made when training ended: base and fine-tuned over the validation examples.
    const tuned = await compare.getByLabel('Right model').inputValue();
    const report = (await api(`/api/v1/models/${encodeURIComponent(tuned)}/evaluation`)) as { models: string[]; summary: Record<string, { exact_match: number }>; examples: Array<{ expected: string; answers: Record<string, string> }> };
    expect(report.models).toEqual(['nodeai-tiny', tuned]);
    const evaluation = compare.getByTestId('evaluation');
    await evaluation.waitFor();
    expect(report.examples.length).toBe(3); // 12 examples, a quarter held out
    await expect.poll(() => evaluation.getByTestId('evaluation-row').count()).toBe(3);
    const summary = evaluation.getByRole('table').first();
    expect(await summary.getByRole('row').nth(1).getByRole('cell').first().textContent()).toBe('Base: nodeai-tiny');
    expect(await summary.getByRole('row').nth(2).getByRole('cell').nth(3).textContent()).toBe(`${Math.round(report.summary[tuned].exact_match * 1000) / 10}%`);
    const first = evaluation.getByTestId('evaluation-row').first().getByRole('cell');
    expect(await first.nth(0).textContent()).toMatch(/^What is \d+\+1\?$/);
    expect(await first.nth(1).textContent()).toBe(report.examples[0].expected);
    expect(await first.nth(3).textContent()).toContain(report.examples[0].answers[tuned]);
    await screenshot(page, 'compare-1440');
    expect(await axeViolations(page)).toEqual([]);
    await evaluation.getByRole('region', { name: 'Validation examples' }).scrollIntoViewIfNeeded();
    await screenshot(page, 'compare-evaluation-1440');
    await page.setViewportSize({ width: 1024, height: 700 });
    await screenshot(page, 'compare-evaluation-1024');
    await page.setViewportSize({ width: 1440, height: 900 });
    await compare.getByRole('button', { name: 'Close Compare models' }).click();

    // A long run stopped with its training job.
    await page.getByTestId('node-finetune').click();
    await page.locator('#field-epochs').fill('50');
    await page.waitForTimeout(500);
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await expect.poll(() => page.getByTestId('node-finetune').getByTestId('node-status').textContent(), { timeout: 60_000 }).toMatch(/^training/);
    // Pause and resume it from its job screen.
    await page.getByRole('button', { name: 'job details' }).click();
    const detail = page.getByRole('dialog', { name: 'Training jobs' });
    await expect.poll(() => detail.getByTestId('job-status').textContent(), { timeout: 30_000 }).toBe('running');
    await detail.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => detail.getByTestId('job-status').textContent(), { timeout: 30_000 }).toBe('paused');
    // Resuming waits for the checkpoint the pause writes; the screen says so, and a later try works.
    await expect
      .poll(
        async () => {
          if ((await detail.getByRole('button', { name: 'Resume' }).count()) > 0) await detail.getByRole('button', { name: 'Resume' }).click();
          return detail.getByTestId('job-status').textContent();
        },
        { timeout: 30_000, interval: 1000 },
      )
      .toMatch(/^(queued|running)$/);
    await detail.getByRole('button', { name: 'Close Training jobs' }).click();
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    const stop = page.getByRole('dialog', { name: 'Stop the run' });
    await stop.getByRole('button', { name: 'Stop the run and cancel training' }).click();
    await expect.poll(() => page.getByTestId('run-status').textContent(), { timeout: 30_000 }).toBe('cancelled');
    const list = (await api('/api/v1/jobs')) as { data: Array<{ status: string }> };
    await expect.poll(async () => ((await api('/api/v1/jobs')) as { data: Array<{ status: string }> }).data[0].status, { timeout: 30_000 }).toBe('cancelled');
    expect(list.data.length).toBeGreaterThanOrEqual(2);
    expect(errors).toEqual([]);
  });

  it('shows how a model was trained and exports it as a Q8_0 GGUF from the Models screen', { timeout: 60_000 }, async () => {
    await page.getByRole('button', { name: 'Models', exact: true }).click();
    const models = page.getByRole('dialog', { name: 'Models' });
    const row = models.getByRole('row').filter({ hasText: 'arithmetic' });
    // The run above trained 2 epochs; the rest the trainer chose or the node's defaults set.
    expect(await row.getByTestId('model-hyperparameters').textContent()).toMatch(/^2 epochs · batch \w+ · learning rate [\w.×-]+( · LoRA rank \d+)?$/);
    expect(await row.getByTestId('model-size').textContent()).toMatch(/^[\d.]+ (KB|MB|GB)$/);
    await page.setViewportSize({ width: 1024, height: 700 });
    await screenshot(page, 'models-1024');
    await page.setViewportSize({ width: 1440, height: 900 });
    await row.getByRole('button', { name: 'Export arithmetic' }).click();
    const dialog = page.getByRole('dialog', { name: 'Export arithmetic' });
    await dialog.getByLabel('Target').selectOption('gguf');
    expect(await dialog.getByLabel('Quantization').inputValue()).toBe('q8_0');
    await dialog.getByRole('button', { name: 'Export', exact: true }).click();
    const result = dialog.getByTestId('export-result');
    await result.waitFor({ timeout: 30_000 });
    const files = await result.getByRole('listitem').allTextContents();
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/exports\/arithmetic\/gguf-q8_0\/arithmetic-Q8_0\.gguf$/);
    expect(await result.getByLabel('Command', { exact: true }).textContent()).toBe(`llama-server -m ${files[0]} --jinja`);
    await screenshot(page, 'model-export-1440');
    expect(await axeViolations(page)).toEqual([]);
    await page.setViewportSize({ width: 1024, height: 700 });
    await screenshot(page, 'model-export-1024');
    expect(await axeViolations(page)).toEqual([]);
    await page.setViewportSize({ width: 1440, height: 900 });
    // The GGUF comes down through a plain link with a single-use ticket, never fetched into the page.
    const gguf = page.waitForEvent('download');
    await result.getByRole('button', { name: 'Download the GGUF ↓' }).click();
    const download = await gguf;
    expect(download.url()).toMatch(/\/api\/v1\/models\/[^/]+\/exports\/gguf-q8_0\?ticket=tkt-[\w-]+$/);
    expect(readFileSync(await download.path()).equals(readFileSync(files[0]))).toBe(true);
    expect(requested.filter((u) => u.includes('/exports/') && !u.includes('ticket='))).toEqual([]);
    await dialog.getByRole('button', { name: 'Close Export arithmetic' }).click();

    // For Ollama: the Modelfile and the `ollama create` line to copy (no ollama binary here).
    await row.getByRole('button', { name: 'Export arithmetic' }).click();
    const ollama = page.getByRole('dialog', { name: 'Export arithmetic' });
    expect(await ollama.getByLabel('Target').inputValue()).toBe('ollama');
    await ollama.getByRole('button', { name: 'Export', exact: true }).click();
    await ollama.getByTestId('export-result').waitFor({ timeout: 30_000 });
    expect(await ollama.getByLabel('Modelfile', { exact: true }).textContent()).toMatch(/^FROM \.\/model\.gguf\n/);
    expect(await ollama.getByLabel('Command', { exact: true }).textContent()).toMatch(/^ollama create arithmetic -f \S+\/exports\/arithmetic\/ollama-q8_0\/Modelfile$/);
    await ollama.getByRole('button', { name: 'Close Export arithmetic' }).click();

    // A model whose file is gone: the server's message, in the dialog.
    const { job_id: jobId } = (await api(`/api/v1/models/${encodeURIComponent('arithmetic')}`)) as { job_id: string };
    const jobDir = join(s.dir, 'data', 'jobs', jobId);
    renameSync(jobDir, `${jobDir}.moved`);
    try {
      await row.getByRole('button', { name: 'Export arithmetic' }).click();
      const failing = page.getByRole('dialog', { name: 'Export arithmetic' });
      await failing.getByRole('button', { name: 'Export', exact: true }).click();
      expect(await failing.getByTestId('export-error').textContent()).toMatch(/^Export failed: .*model file .* is gone; train the model again\.$/);
      await failing.getByRole('button', { name: 'Close Export arithmetic' }).click();
    } finally {
      renameSync(`${jobDir}.moved`, jobDir);
    }
    await models.getByRole('button', { name: 'Close Models' }).click();
    expect(errors).toEqual([]);
  });
});

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { createNodeRegistry } from '../../nodes/index.ts';
import { tempDir } from '../../store/testing.ts';
import { toApiError } from '../errors.ts';
import { startTestServer, type TestServer } from '../testing.ts';
import { templateRoutes } from './templates.ts';

describe('/api/v1/templates', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ registry: createNodeRegistry() });
  });
  afterAll(() => t.close());

  it('lists the example workflows', async () => {
    const res = await (await t.api('/api/v1/templates')).json();
    expect(res.object).toBe('list');
    const ids = res.data.map((x: { id: string }) => x.id);
    expect(ids).toEqual(expect.arrayContaining(['customer-support-bot', 'legal-qa']));
    const bot = res.data.find((x: { id: string }) => x.id === 'customer-support-bot');
    expect(bot).toMatchObject({ object: 'template', name: 'Customer support bot', workflow: { nodes: expect.any(Array), edges: expect.any(Array) } });
  });

  it('turns a template into a runnable draft: its data files go into the file store', async () => {
    const res = await t.api('/api/v1/templates/customer-support-bot/use', { method: 'POST' });
    expect(res.status).toBe(200);
    const draft = await res.json();
    const loader = draft.nodes.find((n: { type: string }) => n.type === 'file_loader');
    expect(loader.config.path).toBeUndefined();
    expect(loader.config.file_id).toMatch(/^file-/);
    const listed = await (await t.api('/api/v1/templates')).json();
    const path = listed.data.find((x: { id: string }) => x.id === 'customer-support-bot').workflow.nodes.find((n: { type: string }) => n.type === 'file_loader').config.path as string;
    const file = await (await t.api(`/api/v1/files/${loader.config.file_id}`)).json();
    expect(file.filename).toBe(path.split('/').pop());
    // The draft passes the server's own check.
    const check = await (await t.api('/api/v1/workflows/validate', { method: 'POST', json: { workflow: draft } })).json();
    expect(check).toEqual({ valid: true, issues: [] });
  });

  it('answers 404 for an unknown template, and for one whose data is missing, says which file', async () => {
    const res = await t.api('/api/v1/templates/no-such/use', { method: 'POST' });
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe('template_not_found');

    const dir = tempDir('nodeai-templates-');
    mkdirSync(join(dir, 'wf'));
    writeFileSync(join(dir, 'wf', 'lost.json'), JSON.stringify({ name: 'Lost', nodes: [{ id: 'l', type: 'file_loader', config: { path: '../data/gone.jsonl' } }], edges: [] }));
    const app = new Hono().route('/', templateRoutes(t.store, join(dir, 'wf')));
    app.onError((err, c) => c.json(toApiError(err).body(), toApiError(err).status));
    const missing = await app.request('/lost/use', { method: 'POST' });
    expect(missing.status).toBe(404);
    const body = (await missing.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('template_data_missing');
    expect(body.error.message).toContain('../data/gone.jsonl');
  });
});

// /api/v1/models/catalog, POST /api/v1/models/pull and GET /api/v1/models/pulls/:id: the base
// models to fine-tune, and downloading them ahead of a run with progress a client can follow.
import { Hono } from 'hono';
import { z } from 'zod';
import { listCatalog, parsePullRef } from '../../trainer/base-catalog.ts';
import { ModelSourceError } from '../../trainer/model-source-errors.ts';
import { badRequest, notFound } from '../errors.ts';
import { readJson } from '../http.ts';
import type { ModelPulls } from '../model-pulls.ts';

const PullBody = z.object({
  model: z.string().min(1).max(500).describe('hf:OWNER/REPO:QUANT, hf:OWNER/REPO/FILE.gguf, ollama:NAME[:TAG] or a catalogue ID'),
});

export function modelPullRoutes(pulls: ModelPulls, dataDir: string): Hono {
  const app = new Hono();
  app.get('/catalog', async (c) => c.json({ object: 'list', data: await listCatalog(dataDir) }));
  app.post('/pull', async (c) => {
    const body = await readJson(c, PullBody);
    try {
      return c.json(pulls.start(parsePullRef(body.model)), 202);
    } catch (e) {
      if (e instanceof ModelSourceError) throw badRequest('invalid_model', e.message, 'model');
      throw e;
    }
  });
  app.get('/pulls/:id', (c) => {
    const pull = pulls.get(c.req.param('id'));
    if (!pull) throw notFound('model pull', c.req.param('id'), 'Pulls are kept while the server runs; start one with POST /api/v1/models/pull.');
    return c.json(pull);
  });
  return app;
}

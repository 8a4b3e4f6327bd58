// `/v1/models`: the built-in base model and this store's fine-tuned models, as OpenAI lists models.
import { Hono } from 'hono';
import type { JobQueue } from '../../../jobs/index.ts';
import { NODEAI_TINY } from '../../../trainer/tiny-model.ts';
import { ApiError, badRequest } from '../../errors.ts';
import { list } from '../../http.ts';

export function v1ModelRoutes(jobs: JobQueue | undefined, needJobs: () => JobQueue): Hono {
  const app = new Hono();
  const base = { id: NODEAI_TINY, object: 'model' as const, created: 0, owned_by: 'nodeai' };
  app.get('/', async (c) => {
    const registered = jobs ? await jobs.models.list() : [];
    return c.json(list([base, ...registered.map((m) => ({ id: m.id, object: 'model' as const, created: Math.floor(m.created_at / 1000), owned_by: 'user' }))]));
  });
  app.get('/:model', async (c) => {
    const id = c.req.param('model');
    if (id === NODEAI_TINY) return c.json(base);
    const m = await needJobs().models.find(id);
    if (!m) throw new ApiError(404, 'model_not_found', `The model ${JSON.stringify(id.slice(0, 120))} does not exist.`, 'model');
    return c.json({ id: m.id, object: 'model', created: Math.floor(m.created_at / 1000), owned_by: 'user' });
  });
  app.delete('/:model', async (c) => {
    const id = c.req.param('model');
    if (id === NODEAI_TINY) throw badRequest('invalid_request', 'The built-in base model cannot be deleted.', 'model');
    const { model } = await needJobs().models.delete(id);
    return c.json({ id: model.id, object: 'model', deleted: true });
  });

  return app;
}

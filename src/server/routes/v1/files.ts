// `/v1/files`: OpenAI's file resource, on this store's files (purpose fine-tune only).
import { Hono } from 'hono';
import type { Store } from '../../../store/index.ts';
import { list } from '../../http.ts';
import { getFileOr404, toApiFile, uploadFile } from '../files.ts';

export function v1FileRoutes(store: Store, maxUploadBytes: number): Hono {
  const app = new Hono();
  app.post('/', async (c) => c.json(toApiFile(await uploadFile(c, store, { maxBytes: maxUploadBytes, purposes: ['fine-tune'] }))));
  app.get('/', async (c) => c.json(list((await store.files.list({ purpose: c.req.query('purpose') || undefined, limit: 10_000 })).map(toApiFile))));
  app.get('/:id', async (c) => c.json(toApiFile(await getFileOr404(store, c.req.param('id')))));
  app.delete('/:id', async (c) => {
    const row = await getFileOr404(store, c.req.param('id'));
    await store.files.delete(row.id);
    return c.json({ id: row.id, object: 'file', deleted: true });
  });

  return app;
}

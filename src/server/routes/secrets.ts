import { Hono } from 'hono';
import { z } from 'zod';
import type { SecretInfo, Store } from '../../store/index.ts';
import { notFound } from '../errors.ts';
import { list, readJson } from '../http.ts';

// Names and times only: no response of this API ever carries a secret's value.
const toApi = (s: SecretInfo) => ({
  name: s.name,
  object: 'secret' as const,
  key_version: s.key_version,
  created_at: Number(s.created_at),
  updated_at: Number(s.updated_at),
  allowed_hosts: s.allowed_hosts,
  short: s.short,
});

// allowed_hosts: where the secret may be sent as an API key besides its provider's own host
// (the vault checks each one); omitted on PUT, the ones stored before stay.
const PutBody = z.object({ value: z.string().min(1).max(64 * 1024), allowed_hosts: z.array(z.string().max(300)).max(32).optional() }).strict();
const SetBody = PutBody.extend({ name: z.string().min(1).max(128) }).strict();

export function secretsRoutes(store: Store): Hono {
  const app = new Hono();
  const saved = async (name: string) => toApi((await store.secrets.list()).find((s) => s.name === name)!);
  app.get('/', async (c) => c.json(list((await store.secrets.list()).map(toApi))));
  app.post('/', async (c) => {
    const body = await readJson(c, SetBody);
    await store.secrets.set(body.name, body.value, { allowedHosts: body.allowed_hosts });
    return c.json(await saved(body.name), 201);
  });
  app.put('/:name', async (c) => {
    const name = c.req.param('name');
    const body = await readJson(c, PutBody);
    await store.secrets.set(name, body.value, { allowedHosts: body.allowed_hosts });
    return c.json(await saved(name));
  });
  app.delete('/:name', async (c) => {
    const name = c.req.param('name');
    if (!(await store.secrets.delete(name))) throw notFound('secret', name);
    return c.json({ name, object: 'secret', deleted: true });
  });
  return app;
}

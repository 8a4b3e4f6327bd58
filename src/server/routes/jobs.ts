import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { findModel } from '../../datasets/index.ts';
import type { JobQueue, ModelRecord } from '../../jobs/index.ts';
import type { CreateJobRequest } from '../../providers/spec.ts';
import { JOB_STATUSES, type StoredJobStatus, type Store } from '../../store/index.ts';
import { badRequest } from '../errors.ts';
import { list, queryInt, readJson } from '../http.ts';

const Auto = <T extends z.ZodType>(schema: T) => z.union([z.literal('auto'), schema]);
// Strict: a misspelt or unsupported hyperparameter is refused by name, not silently dropped.
const Hyperparameters = z.strictObject({
  n_epochs: Auto(z.number().int().min(1).max(50)).optional(),
  batch_size: Auto(z.number().int().min(1).max(256)).optional(),
  learning_rate_multiplier: Auto(z.number().positive().max(100)).optional(),
  // NodeAI's own, for the local trainer (OpenAI's SDK passes unknown keys through).
  lora_rank: z.number().int().min(0).max(256).optional(),
  early_stopping_patience: z.number().int().min(1).max(50).optional(),
});

/** OpenAI's create-job body; what the local trainer cannot do is refused here, by field. */
export const CreateJobBody = z.object({
  model: z.string().min(1),
  training_file: z.string().min(1),
  validation_file: z.string().min(1).nullish(),
  hyperparameters: Hyperparameters.optional(),
  method: z
    .object({
      type: z.enum(['supervised', 'dpo', 'reinforcement']),
      supervised: z.object({ hyperparameters: Hyperparameters.optional() }).optional(),
      dpo: z.object({ hyperparameters: z.record(z.string(), z.unknown()).optional() }).optional(),
    })
    .optional(),
  // OpenAI's rule: up to 64 letters, digits, "-" and "_"; anything else is refused, not rewritten.
  suffix: z
    .string()
    .max(64)
    .regex(/^[A-Za-z0-9_-]*$/, 'use only letters, digits, "-" and "_" (OpenAI\'s suffix rule)')
    .nullish(),
  seed: z.number().int().min(0).max(2 ** 31 - 1).nullish(),
  metadata: z.record(z.string().max(64), z.string().max(512)).nullish(),
});

export async function createJob(jobs: JobQueue, store: Store, body: z.output<typeof CreateJobBody>) {
  // A fine-tuned model of this server trains further from its own weights (continued fine-tuning).
  // Looked up first: the catalogue reads "ft:nodeai-tiny:…" as nodeai-tiny.
  const registered = await jobs.models.find(body.model);
  const info = registered || body.model.startsWith('ft:') ? undefined : findModel(body.model);
  if (registered && !(await jobs.models.trainable(registered.id))) {
    throw badRequest('model_not_available', `${registered.id} has no local model file to train further (a remote or adapter-only model); start from "nodeai-tiny".`, 'model');
  }
  if (!registered && (!info || info.provider !== 'local')) {
    const hint = info ? ` ${info.id} is trained by ${info.provider}; this server trains local models.` : '';
    throw badRequest('model_not_available', `Model ${JSON.stringify(body.model.slice(0, 80))} cannot be fine-tuned here.${hint} Use "nodeai-tiny" or one of this server's fine-tuned models.`, 'model');
  }
  if (body.method && body.method.type !== 'supervised') {
    throw badRequest('unsupported_method', `method.type "${body.method.type}" is not supported by the local trainer; use "supervised".`, 'method.type');
  }
  for (const field of ['training_file', 'validation_file'] as const) {
    const id = body[field];
    if (!id) continue;
    const file = await store.files.find(id).catch(() => undefined);
    if (!file) throw badRequest('invalid_file', `${field} ${JSON.stringify(id.slice(0, 80))} does not exist. Upload it with purpose "fine-tune" first.`, field);
    if (file.purpose !== 'fine-tune') throw badRequest('invalid_file', `${field} ${id} was uploaded with purpose "${file.purpose}"; fine-tuning needs purpose "fine-tune".`, field);
  }
  const req: CreateJobRequest = {
    model: registered?.id ?? info!.id,
    training_file: body.training_file,
    validation_file: body.validation_file ?? null,
    hyperparameters: body.method?.supervised?.hyperparameters ?? body.hyperparameters,
    suffix: body.suffix ?? null,
    seed: body.seed ?? null,
    metadata: body.metadata ?? null,
  };
  return jobs.create({ ...req, provider: 'local', method: 'supervised' });
}

export function pageParams(c: Context, defLimit: number, maxLimit: number) {
  return { after: c.req.query('after') || undefined, limit: queryInt(c, 'limit', defLimit, 1, maxLimit) };
}

export function jobRoutes(jobs: JobQueue, store: Store): Hono {
  const app = new Hono();
  app.get('/', async (c) => {
    const status = c.req.query('status');
    if (status !== undefined && !JOB_STATUSES.includes(status as StoredJobStatus)) throw badRequest('invalid_request', `Unknown job status ${JSON.stringify(status.slice(0, 40))}; use one of ${JOB_STATUSES.join(', ')}.`, 'status');
    const page = await jobs.list({ ...pageParams(c, 20, 1000), status: status as StoredJobStatus | undefined });
    return c.json(list(page.data, page.has_more));
  });
  app.post('/', async (c) => c.json(await createJob(jobs, store, await readJson(c, CreateJobBody)), 201));
  app.get('/:id', async (c) => c.json(await jobs.get(c.req.param('id'))));
  app.get('/:id/events', async (c) => {
    const page = await jobs.listEvents(c.req.param('id'), pageParams(c, 100, 10_000));
    return c.json(list(page.data, page.has_more));
  });
  app.get('/:id/checkpoints', async (c) => {
    const page = await jobs.listCheckpoints(c.req.param('id'), pageParams(c, 10, 1000));
    return c.json(list(page.data, page.has_more));
  });
  app.get('/:id/metrics', async (c) => c.json(list(await jobs.metricsHistory(c.req.param('id')))));
  app.post('/:id/cancel', async (c) => c.json(await jobs.cancel(c.req.param('id'))));
  app.post('/:id/pause', async (c) => c.json(await jobs.pause(c.req.param('id'))));
  app.post('/:id/resume', async (c) => c.json(await jobs.resume(c.req.param('id'))));
  return app;
}

const RenameBody = z.object({ name: z.string().min(1).max(200) });

const toApiModel = (m: ModelRecord) => {
  // The registry's file paths are server internals; clients see which kinds of file exist.
  const { path: _path, files, ...rest } = m;
  return { ...rest, files: Object.keys(files).filter((k) => files[k]) };
};

export function modelRoutes(jobs: JobQueue): Hono {
  const app = new Hono();
  const models = jobs.models;
  app.get('/', async (c) => c.json(list((await models.list({ limit: queryInt(c, 'limit', 1000, 1, 10_000) })).map(toApiModel))));
  app.get('/:id', async (c) => c.json(toApiModel(await models.get(c.req.param('id')))));
  app.get('/:id/usage', async (c) => {
    const m = await models.get(c.req.param('id'));
    return c.json({ id: m.id, object: 'model.usage', usage_count: m.usage_count, last_used_at: m.last_used_at });
  });
  app.patch('/:id', async (c) => {
    const body = await readJson(c, RenameBody);
    return c.json(toApiModel(await models.rename(c.req.param('id'), body.name)));
  });
  app.delete('/:id', async (c) => {
    const { model } = await models.delete(c.req.param('id'));
    return c.json({ id: model.id, object: 'model', deleted: true });
  });
  return app;
}


import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { FineTuneError, type JobQueue, type ModelRecord } from '../../jobs/index.ts';
import { downloadedModelFile, fineTune } from '../../jobs/fine-tune-service.ts';
import { LocalFineTuneProvider } from '../../jobs/queue-providers.ts';
import { fromOpenAIJobBody, OpenAIJobBody, parseFineTuneRequest, toOpenAIParam } from '../../providers/fine-tune-request.ts';
import { JOB_STATUSES, type StoredJobStatus, type Store } from '../../store/index.ts';
import { ApiError, badRequest } from '../errors.ts';
import { list, queryInt, readJson } from '../http.ts';

/**
 * OpenAI's create-job body, as /v1 and /api/v1 take it: mapped onto a FineTuneRequest in one
 * function and given to the fine-tune service, which queues it for the local trainer.
 */
export async function createJob(jobs: JobQueue, store: Store, body: OpenAIJobBody) {
  try {
    const request = parseFineTuneRequest(fromOpenAIJobBody(body));
    const outcome = await fineTune(request, { provider: new LocalFineTuneProvider(jobs), files: store.files, models: jobs.models, scratchDir: store.dataDir, modelFile: downloadedModelFile(store.dataDir) });
    return outcome.job;
  } catch (err) {
    if (err instanceof FineTuneError) throw new ApiError(err.status, err.code, err.message, toOpenAIParam(err.param));
    throw err;
  }
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
  app.post('/', async (c) => c.json(await createJob(jobs, store, await readJson(c, OpenAIJobBody)), 201));
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

export function modelRoutes(jobs: JobQueue): Hono {
  const app = new Hono();
  const models = jobs.models;
  /**
   * Models as clients see them: which kinds of file exist (the registry's paths are server
   * internals), the GGUF's size in bytes, and the hyperparameters of the job that trained each.
   * The jobs are read in one query, however many models there are.
   */
  const toApiModels = async (records: ModelRecord[]) => {
    // A job deleted since (or one at a remote provider this store no longer has) has none to give.
    const hyperparameters = await jobs.hyperparametersOf(records.flatMap((m) => (m.job_id ? [m.job_id] : [])));
    return records.map(({ path: _path, files, bytes, ...rest }) => ({
      ...rest,
      files: Object.keys(files).filter((k) => files[k]),
      bytes,
      hyperparameters: (rest.job_id && hyperparameters.get(rest.job_id)) || null,
    }));
  };
  const toApiModel = async (m: ModelRecord) => (await toApiModels([m]))[0];
  app.get('/', async (c) => c.json(list(await toApiModels(await models.list({ limit: queryInt(c, 'limit', 1000, 1, 10_000) })))));
  app.get('/:id', async (c) => c.json(await toApiModel(await models.get(c.req.param('id')))));
  app.get('/:id/usage', async (c) => {
    const m = await models.get(c.req.param('id'));
    return c.json({ id: m.id, object: 'model.usage', usage_count: m.usage_count, last_used_at: m.last_used_at });
  });
  app.get('/:id/evaluation', async (c) => {
    const m = await models.get(c.req.param('id'));
    const report = await models.evaluation(m.id);
    if (!report) {
      throw new ApiError(
        404,
        'evaluation_not_found',
        `Model ${m.id} has no evaluation: it runs when a local fine-tuning job with validation examples ends (the Fine-Tune node's "evaluate" setting; off for remote providers). Evaluate it now with POST /api/v1/evaluations or "nodeai eval ${m.id} FILE".`,
      );
    }
    return c.json({ model: m.id, ...report });
  });
  app.patch('/:id', async (c) => {
    const body = await readJson(c, RenameBody);
    return c.json(await toApiModel(await models.rename(c.req.param('id'), body.name)));
  });
  app.delete('/:id', async (c) => {
    const { model } = await models.delete(c.req.param('id'));
    return c.json({ id: model.id, object: 'model', deleted: true });
  });
  return app;
}


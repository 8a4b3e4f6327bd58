// `/v1/fine_tuning/jobs`: OpenAI's fine-tuning job resource; a new job goes through the fine-tune
// service (createJob), the rest reads and steers the queue.
import { Hono } from 'hono';
import type { JobQueue } from '../../../../jobs/index.ts';
import { OpenAIJobBody } from '../../../../providers/fine-tune-request.ts';
import type { Store } from '../../../../store/index.ts';
import { list, readJson } from '../../../http.ts';
import { createJob, pageParams } from '../../jobs.ts';

export function v1FineTuningJobRoutes(needJobs: () => JobQueue, store: Store): Hono {
  const app = new Hono();
  app.post('/', async (c) => c.json(await createJob(needJobs(), store, await readJson(c, OpenAIJobBody))));
  app.get('/', async (c) => {
    const page = await needJobs().list(pageParams(c, 20, 100));
    return c.json(list(page.data, page.has_more));
  });
  app.get('/:id', async (c) => c.json(await needJobs().get(c.req.param('id'))));
  app.post('/:id/cancel', async (c) => c.json(await needJobs().cancel(c.req.param('id'))));
  app.post('/:id/pause', async (c) => c.json(await needJobs().pause(c.req.param('id'))));
  app.post('/:id/resume', async (c) => c.json(await needJobs().resume(c.req.param('id'))));
  app.get('/:id/events', async (c) => {
    const page = await needJobs().listEvents(c.req.param('id'), pageParams(c, 20, 10_000));
    return c.json(list(page.data, page.has_more));
  });
  app.get('/:id/checkpoints', async (c) => {
    const page = await needJobs().listCheckpoints(c.req.param('id'), pageParams(c, 10, 100));
    return c.json({ ...list(page.data, page.has_more), first_id: page.data[0]?.id ?? null, last_id: page.data.at(-1)?.id ?? null });
  });

  return app;
}

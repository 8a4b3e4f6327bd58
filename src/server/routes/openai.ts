// `/v1`: OpenAI's REST shapes served by the local engine, so the official SDKs and every
// OpenAI-compatible tool can upload, fine-tune and chat against NodeAI. One file per resource,
// as the paths go: v1/files, v1/fine-tuning/jobs, v1/models, v1/chat.
import { Hono } from 'hono';
import type { JobQueue } from '../../jobs/index.ts';
import type { ChatProvider } from '../../providers/spec.ts';
import type { Store } from '../../store/index.ts';
import { ApiError } from '../errors.ts';
import { v1ChatRoutes } from './v1/chat.ts';
import { v1FileRoutes } from './v1/files.ts';
import { v1FineTuningJobRoutes } from './v1/fine-tuning/jobs.ts';
import { v1ModelRoutes } from './v1/models.ts';

export interface OpenAiRoutesOptions {
  store: Store;
  jobs?: JobQueue;
  chat?: ChatProvider;
  maxUploadBytes: number;
}

export function openAiRoutes(options: OpenAiRoutesOptions): Hono {
  const { store, jobs, chat } = options;
  const needJobs = () => {
    if (!jobs) throw new ApiError(501, 'not_configured', 'Fine-tuning is not configured on this server.');
    return jobs;
  };
  const app = new Hono();
  app.route('/files', v1FileRoutes(store, options.maxUploadBytes));
  app.route('/fine_tuning/jobs', v1FineTuningJobRoutes(needJobs, store));
  app.route('/models', v1ModelRoutes(jobs, needJobs));
  app.route('/chat', v1ChatRoutes(chat, jobs));
  return app;
}

import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Engine, NodeRegistry } from '../engine/index.ts';
import type { JobQueue } from '../jobs/index.ts';
import type { ChatProvider } from '../providers/spec.ts';
import { DEFAULT_MAX_FILE_BYTES, type Store } from '../store/index.ts';
import { allowedHostsCheck, type AllowedHosts } from './allowed-hosts.ts';
import { bearerAuth } from './auth.ts';
import { ApiError, toApiError } from './errors.ts';
import { EventHub } from './event-hub.ts';
import { LinkTickets } from './link-tickets.ts';
import { ModelPulls } from './model-pulls.ts';
import { EvaluationRuns } from './evaluation-runs.ts';
import { evaluationRoutes } from './routes/evaluations.ts';
import { openAIRemoteChat } from '../jobs/evaluation-service.ts';
import { downloadedModelFile } from '../jobs/fine-tune-service.ts';
import { remoteBaseUrl } from '../jobs/remote-tracker.ts';
import { filesRoutes } from './routes/files.ts';
import { jobRoutes, modelRoutes } from './routes/jobs.ts';
import { modelFileRoutes } from './routes/model-files.ts';
import { modelPullRoutes } from './routes/model-pulls.ts';
import { openAiRoutes } from './routes/openai.ts';
import { secretsRoutes } from './routes/secrets.ts';
import { templateRoutes } from './routes/templates.ts';
import { ticketRoutes } from './routes/tickets.ts';
import { runRoutes, workflowRoutes } from './routes/workflows.ts';
import { eventsHandler } from './routes/events.ts';
import { DEFAULT_WEB_DIR, webRoutes } from './web.ts';

export interface AppOptions {
  store: Store;
  engine: Engine;
  /** Default: the engine's registry. */
  registry?: NodeRegistry;
  /** The job queue (and through it the model registry); without it job and model routes answer 501. */
  jobs?: JobQueue;
  /** Chat for `/v1/chat/completions` (the local provider over base and fine-tuned models). */
  chat?: ChatProvider;
  /** Required on every route but `GET /health`; `null` turns auth off (loopback-only servers in tests). */
  token: string | null;
  /** Largest upload; default the store's limit. */
  maxUploadBytes?: number;
  /** Largest JSON body; default 4 MiB. */
  maxJsonBytes?: number;
  /** Events kept for SSE replay. */
  eventCapacity?: number;
  /** How often job changes are read from the store for SSE; default 250 ms. */
  jobPollMs?: number;
  sse?: { pingMs?: number; maxQueue?: number };
  /** Read for HF_ENDPOINT, HF_TOKEN and OLLAMA_MODELS by model pulls; default process.env. */
  modelEnv?: NodeJS.ProcessEnv;
  /** The built canvas served at `/`; default web/dist of this package, `null` serves none. */
  webDir?: string | null;
  /**
   * Host names answered besides 127.0.0.1, localhost and [::1] (`--allowed-host`); `['*']` answers
   * any. Every other Host header is refused with 403, against DNS rebinding.
   */
  allowedHosts?: AllowedHosts;
  /** Where unexpected failures are reported (their text never reaches the client). */
  onError?: (err: unknown, c: Context) => void;
}

export interface NodeAiApp {
  app: Hono;
  hub: EventHub;
  /** Ends open event streams and stops polling; the store is the caller's to close. */
  close(): Promise<void>;
}

export function createApp(options: AppOptions): NodeAiApp {
  const { store, engine } = options;
  const registry = options.registry ?? engine.registry;
  const maxUpload = options.maxUploadBytes ?? store.files.maxBytes ?? DEFAULT_MAX_FILE_BYTES;
  const maxJson = options.maxJsonBytes ?? 4 * 1024 * 1024;
  const hub = new EventHub({ db: store.db, engine, jobs: options.jobs, capacity: options.eventCapacity, pollMs: options.jobPollMs });
  const report = options.onError ?? ((err: unknown) => console.error('nodeai serve:', store.redactor.formatError(err)));

  const pulls = new ModelPulls({ dataDir: store.dataDir, ...(options.modelEnv ? { env: options.modelEnv } : {}), publish: (pull) => hub.publish('model.pull', { ...pull }, {}) });

  const app = new Hono();
  app.onError((err, c) => {
    const api = toApiError(err);
    if (api.status >= 500) report(err, c);
    // Every error body goes out with secrets masked and server paths shortened.
    return c.json(store.redactor.redactValue(api.body()), api.status);
  });
  app.notFound((c) => c.json(new ApiError(404, 'route_not_found', `No route ${c.req.method} ${c.req.path}.`).body(), 404));

  app.use('*', allowedHostsCheck(options.allowedHosts ?? []));
  app.get('/health', (c) => c.json({ status: 'ok' }));
  const tickets = new LinkTickets();
  if (options.token !== null) {
    const auth = bearerAuth(options.token, tickets);
    app.use('/api/*', auth);
    app.use('/v1/*', auth);
  }
  // Uploads stream under their own, larger limit; everything else is a small JSON body.
  const jsonLimit = bodyLimit({
    maxSize: maxJson,
    onError: () => {
      throw new ApiError(413, 'request_too_large', `The request body is over the ${maxJson}-byte limit.`);
    },
  });
  app.use('*', async (c, next) => {
    // A GET has no body to limit, and touching `c.req.raw` makes the Node adapter build a full
    // Request with a body stream: a 4–8× throughput cost on the hot read routes.
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    if (c.req.method === 'POST' && /^\/(api\/)?v1\/files\/?$/.test(c.req.path)) return next();
    return jsonLimit(c, next);
  });

  const api = new Hono();
  api.route('/files', filesRoutes(store, maxUpload));
  api.route('/secrets', secretsRoutes(store));
  api.route('/templates', templateRoutes(store));
  api.route('/workflows', workflowRoutes(engine));
  api.route('/runs', runRoutes(engine));
  // Before the model registry's routes, whose /:id would take "catalog" for a model ID.
  api.route('/models', modelPullRoutes(pulls, store.dataDir));
  let evaluations: EvaluationRuns | undefined;
  if (options.jobs) {
    const jobs = options.jobs;
    const evaluationDeps = {
      models: jobs.models,
      dataDir: store.dataDir,
      files: store.files,
      // An hf:/ollama: model must be pulled first: a request does not wait on a download.
      modelFile: downloadedModelFile(store.dataDir),
      remoteChat: openAIRemoteChat({ getSecret: store.secrets.lookupKey, redactor: store.redactor }, { jobBaseURL: async (id) => remoteBaseUrl(await jobs.getRow(id).catch(() => ({ metadata_json: null }))) ?? undefined }),
    };
    evaluations = new EvaluationRuns({ deps: evaluationDeps, publish: (run) => hub.publish('evaluation', { ...run }, {}) });
    api.route('/evaluations', evaluationRoutes(evaluations, evaluationDeps));
    api.route('/jobs', jobRoutes(options.jobs, store));
    api.route('/models', modelRoutes(options.jobs));
    api.route('/models', modelFileRoutes(options.jobs, store.dataDir));
  }
  api.get('/node-types', (c) => c.json({ object: 'list', data: registry.describe() }));
  api.route('/', ticketRoutes(tickets));
  api.get('/events', eventsHandler({ hub, engine, db: store.db, pingMs: options.sse?.pingMs, maxQueue: options.sse?.maxQueue }));
  app.route('/api/v1', api);
  app.route('/v1', openAiRoutes({ store, jobs: options.jobs, chat: options.chat, maxUploadBytes: maxUpload }));
  if (options.webDir !== null) app.route('/', webRoutes(options.webDir ?? DEFAULT_WEB_DIR));

  return {
    app,
    hub,
    close: () => {
      pulls.close();
      evaluations?.close();
      return hub.close();
    },
  };
}

// `nodeai serve`: the REST API, live events and the OpenAI-compatible /v1 over the local engine.
import { parseArgs } from 'node:util';
import { LOOPBACK_HOSTS, normalizeAllowedHost } from '../server/allowed-hosts.ts';
import { loadApiToken } from '../server/auth.ts';
import { createRuntime } from '../server/runtime.ts';
import { DEFAULT_HOST, DEFAULT_PORT, startServer } from '../server/start.ts';
import { dataDirOf, logReclaimed, runUntilSignal } from './app.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `Usage: nodeai serve [--host ${DEFAULT_HOST}] [--port ${DEFAULT_PORT}] [--allowed-host NAME]... [--data-dir DIR] [--no-worker]

Serves /api/v1 (files, workflows, runs, jobs, models, secrets, live events) and an
OpenAI-compatible /v1 (files, fine_tuning.jobs, models, chat.completions).

Every route but GET /health needs "Authorization: Bearer <token>". The token is
NODEAI_API_TOKEN, else the file api-token in the data directory (NODEAI_DATA_DIR,
default ~/.nodeai), generated on the first start and printed that once.

Options:
  --host H       address to listen on (default ${DEFAULT_HOST}; anything else exposes the API)
  --port P       port (default ${DEFAULT_PORT}; 0 picks a free one)
  --allowed-host NAME
                 a Host name the server answers to besides ${LOOPBACK_HOSTS.join(', ')}
                 (repeatable; '*' answers any). Other names are refused, against DNS
                 rebinding; listening beyond loopback needs at least one.
  --data-dir DIR where NodeAI keeps its database, uploads, jobs and models
                 (default: NODEAI_DATA_DIR, else ~/.nodeai)
  --no-worker    do not train here; "nodeai worker" processes train the jobs`;

export async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { host: { type: 'string' }, port: { type: 'string' }, 'data-dir': { type: 'string' }, 'allowed-host': { type: 'string', multiple: true }, 'no-worker': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${USAGE}`);
  }
  const { values } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const host = values.host ?? DEFAULT_HOST;
  const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a whole number from 0 to 65535, got ${JSON.stringify(values.port)}.`);

  const allowedHosts = (values['allowed-host'] ?? []).map(normalizeAllowedHost);
  if (allowedHosts.some((h) => h === '')) throw new UsageError('--allowed-host needs a host name, e.g. --allowed-host nodeai.lan');
  const dataDir = dataDirOf(values);
  const token = loadApiToken(dataDir);
  const log = (line: string) => console.error(`nodeai serve: ${line}`);
  const runtime = await createRuntime({
    dataDir,
    worker: values['no-worker'] ? false : { onLeaseLost: (jobId) => log(`${jobId} was lost to another process (this one's lease ran out); its trainer was stopped and its late writes refused`) },
    onError: (err) => log(runtime.store.redactor.formatError(err)),
    onReclaimed: (report) => logReclaimed(log, report),
  });
  let server;
  try {
    server = await startServer({ store: runtime.store, engine: runtime.engine, jobs: runtime.jobs, chat: runtime.services.localChat, token: token.token, host, port, allowedHosts });
  } catch (err) {
    await runtime.close();
    throw err;
  }
  const { recovered } = runtime;
  if (recovered.requeuedJobs.length) log(`resuming ${recovered.requeuedJobs.length} interrupted job(s) from their checkpoints: ${recovered.requeuedJobs.join(', ')}`);
  if (recovered.failedJobs.length) log(`${recovered.failedJobs.length} interrupted job(s) could not be resumed and were failed: ${recovered.failedJobs.join(', ')}`);
  console.log(`NodeAI listening on ${server.url} (data: ${dataDir}, database: ${runtime.store.location})`);
  console.log(`Answering to Host: ${allowedHosts.includes('*') ? 'any name (--allowed-host *)' : [...LOOPBACK_HOSTS, ...allowedHosts].join(', ')}`);
  console.log(`Canvas: ${server.url}/`);
  console.log(`OpenAI-compatible API: ${server.url}/v1`);
  if (token.created) console.log(`API token (shown once; also in ${token.path}): ${token.token}`);
  else console.log(`API token: ${token.source === 'env' ? 'from NODEAI_API_TOKEN' : `in ${token.path}`}`);

  return runUntilSignal(
    log,
    {
      stopping: () => 'stopping (no new requests; a training job is checkpointed and resumes on the next start)…',
      again: 'exiting now; a training job resumes from its last checkpoint on the next start.',
    },
    async () => {
      await server.close();
      await runtime.close();
    },
  );
}

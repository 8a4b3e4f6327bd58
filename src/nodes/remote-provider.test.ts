// NodeAI using another NodeAI as its OpenAI provider: Data Loader → Fine-Tune (openai, base_url =
// a real NodeAI server with the real trainer) → Chat (openai) completes with a reply. And the
// Chat node with Anthropic, against a local server that speaks Anthropic's Messages API.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../engine/index.ts';
import { JobQueue, JobWorker } from '../jobs/index.ts';
import { openAIConnector, RemoteJobTracker } from '../jobs/remote-tracker.ts';
import { startFakeServer, type FakeServer } from '../providers/testing.ts';
import { startTestServer, TEST_TOKEN, type TestServer } from '../server/testing.ts';
import { createNodeRegistry, createNodeServices, type NodeServices } from './index.ts';
import { makeSqlite } from './test-support.ts';
import type { TestDb } from '../store/testing.ts';

const example = (i: number) => ({ messages: [{ role: 'user', content: `What is ${i}+1?` }, { role: 'assistant', content: `${i + 1}.` }] });
const JSONL = Array.from({ length: 12 }, (_, i) => JSON.stringify(example(i))).join('\n');

describe('a workflow that fine-tunes and chats on another NodeAI through provider openai', () => {
  let remote: TestServer;
  let worker: JobWorker;
  let t: TestDb;
  let services: NodeServices;
  let engine: Engine;

  beforeAll(async () => {
    remote = await startTestServer({
      wire: (store) => {
        const jobs = new JobQueue(store);
        return { jobs, chat: createNodeServices(store, { jobs }).localChat };
      },
    });
    worker = new JobWorker(remote.server.jobs!, { pollMs: 20, threads: 1 });
    worker.start();
    t = await makeSqlite();
    const jobs = new JobQueue(t.store);
    services = createNodeServices(t.store, { jobs, remoteJobs: new RemoteJobTracker(jobs, { pollMs: 100, maxPollMs: 300, connect: openAIConnector(jobs) }) });
    engine = new Engine({ store: t.store, registry: createNodeRegistry(), services: { nodeai: services } });
    jobs.onFinished((o) => void engine.resumeRunsForJob(o));
  });
  afterAll(async () => {
    await services?.remoteJobs.stop();
    engine?.close();
    await t?.cleanup();
    await worker?.stop();
    await remote?.close();
  });

  it('Data Loader → Fine-Tune (openai, base_url = NodeAI) → Chat (openai) completes with a reply; the key stays out of the run', async () => {
    // The remote NodeAI's API token is this NodeAI's "OpenAI key", kept in the vault.
    await t.store.secrets.set('OPENAI_API_KEY', TEST_TOKEN, { allowedHosts: [new URL(remote.url).host] });
    const baseUrl = `${remote.url}/v1`;
    const wf = {
      name: 'remote fine-tune',
      nodes: [
        { id: 'data', type: 'data_loader', config: { text: JSONL } },
        { id: 'ft', type: 'finetune', config: { provider: 'openai', base_url: baseUrl, epochs: 1, batch_size: 4, model_name: 'remote', seed: 1 } },
        { id: 'chat', type: 'chat', config: { provider: 'openai', base_url: baseUrl, prompt: 'What is 2+1?', max_tokens: 8 } },
        // No base_url: the model is served where it was trained.
        { id: 'chat2', type: 'chat', config: { provider: 'openai', prompt: 'What is 2+1?', max_tokens: 8 } },
      ],
      edges: [
        { source: 'data', target: 'ft' },
        { source: 'ft', target: 'chat' },
        { source: 'ft', target: 'chat2' },
      ],
    };
    const finished = new Promise<string>((resolve) => engine.subscribe((e) => e.type === 'run.finished' && resolve(e.status)));
    const started = await engine.run(wf);
    expect(started.error).toBeUndefined();
    expect(started.status).toBe('waiting');
    const jobId = started.waiting!.jobId;
    const local = await services.jobs.getRow(jobId);
    expect(local).toMatchObject({ provider: 'openai', provider_job_id: expect.stringMatching(/^ftjob-/) });
    expect(local.provider_job_id).not.toBe(jobId);

    expect(await finished).toBe('succeeded');
    const run = await engine.getRun(started.runId);
    const out = (id: string) => run.nodes.find((n) => n.nodeId === id)!.outputs as Record<string, unknown>;
    const model = out('ft').fine_tuned_model as string;
    expect(model).toMatch(/^ft:nodeai-tiny:remote:/);
    expect(out('ft')).toMatchObject({ status: 'succeeded', provider: 'openai', base_url: baseUrl });
    expect(typeof out('chat').reply).toBe('string');
    expect(out('chat')).toMatchObject({ model, usage: { completion_tokens: expect.any(Number) } });
    expect((out('chat').usage as { completion_tokens: number }).completion_tokens).toBeGreaterThan(0);
    expect(out('chat2').reply).toBe(out('chat').reply);

    // Both sides know the model: here as an openai model from this job, there as its own.
    expect(await services.models.get(model)).toMatchObject({ provider: 'openai', job_id: jobId });
    expect((await remote.api(`/v1/models/${encodeURIComponent(model)}`)).status).toBe(200);
    // The remote job's training progress was mirrored here.
    const events = await services.jobs.listEvents(jobId, { limit: 200 });
    expect(events.data.some((e) => e.type === 'metrics')).toBe(true);
    expect(JSON.stringify([run, events, await services.jobs.getRow(jobId)])).not.toContain(TEST_TOKEN);
  }, 60_000);
});

describe('Chat node with provider anthropic (local server speaking the Messages API)', () => {
  let fake: FakeServer;
  let t: TestDb;
  let engine: Engine;

  beforeAll(async () => {
    fake = await startFakeServer((req) => {
      // The documented header is x-api-key; SDK 1.x sends the same key as a bearer token.
      const key = req.headers['x-api-key'] ?? req.headers.authorization?.replace(/^Bearer /, '');
      if (key !== 'sk-ant-test-key') return { status: 401, json: { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } } };
      const body = JSON.parse(req.body) as { system?: string; messages: { content: string }[] };
      return {
        json: {
          id: 'msg_1',
          type: 'message',
          role: 'assistant',
          model: 'claude-test',
          content: [{ type: 'text', text: `system=${body.system ?? ''}; user=${body.messages.at(-1)!.content}` }],
          stop_reason: 'end_turn',
          stop_sequence: null,
          usage: { input_tokens: 7, output_tokens: 5 },
        },
      };
    });
    t = await makeSqlite();
    engine = new Engine({ store: t.store, registry: createNodeRegistry(), services: { nodeai: createNodeServices(t.store) } });
  });
  afterAll(async () => {
    engine?.close();
    await t?.cleanup();
    await fake?.close();
  });

  it('without a key says where to add it; with the vault key replies, the system prompt in Anthropic\'s system field', async () => {
    delete process.env.ANTHROPIC_API_KEY;
    const wf = { name: 'a', nodes: [{ id: 'chat', type: 'chat', config: { provider: 'anthropic', base_url: fake.url, model: 'claude-test', system_prompt: 'Be brief.', prompt: 'Hi' } }], edges: [] };
    const missing = await engine.run(wf);
    expect(missing.error).toMatchObject({ code: 'api_key_missing' });
    expect(missing.error!.message).toMatch(/Anthropic API key not found\. Add it in the node's "api_key" setting, or store it once with "nodeai secrets set ANTHROPIC_API_KEY"/);

    await t.store.secrets.set('ANTHROPIC_API_KEY', 'sk-ant-test-key', { allowedHosts: [new URL(fake.url).host] });
    const ok = await engine.run(wf);
    expect(ok.error).toBeUndefined();
    expect(ok.status).toBe('succeeded');
    expect(ok.outputs.chat).toMatchObject({ reply: 'system=Be brief.; user=Hi', usage: { prompt_tokens: 7, completion_tokens: 5, total_tokens: 12 } });
    const sent = JSON.parse(fake.requests.at(-1)!.body);
    expect(sent.messages).toEqual([{ role: 'user', content: 'Hi' }]);
    expect(fake.requests.at(-1)!.headers['anthropic-version']).toBeTruthy();
    expect(JSON.stringify(await engine.getRun(ok.runId))).not.toContain('sk-ant-test-key');
  });
});

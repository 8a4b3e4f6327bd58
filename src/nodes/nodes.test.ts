import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Engine, WorkflowValidationError } from '../engine/index.ts';
import { JobWorker } from '../jobs/index.ts';
import { DEVICE_METADATA_KEY } from '../providers/fine-tune-request.ts';
import type { LocalTrainingRunner } from '../providers/local.ts';
import { describeEachDialect, type TestDb } from '../store/testing.ts';
import { writeGgufModel } from '../trainer/gguf-model.ts';
import { createTinyModel } from '../trainer/tiny-model.ts';
import { createNodeRegistry, createNodeServices, type NodeServices } from './index.ts';
import { workflowTestEngine } from './test-support.ts';

const example = (i: number) => ({ messages: [{ role: 'user', content: `What is ${i}+1?` }, { role: 'assistant', content: `${i + 1}.` }] });
const JSONL = Array.from({ length: 12 }, (_, i) => JSON.stringify(example(i))).join('\n') + '\n';

/** Honours the supervisor contract and writes a real (untrained) GGUF, so chat really runs on it. */
const ggufTrainer: LocalTrainingRunner = async (spec, { onEvent }) => {
  onEvent?.({ type: 'metrics', time: Date.now(), step: 1, total_steps: 1, epoch: 1, total_epochs: 1, train_loss: 2.5, valid_loss: 2.7 });
  const modelPath = join(spec.jobDir, `${spec.outputName}.gguf`);
  await writeGgufModel(modelPath, createTinyModel({ seed: 3, blockCount: 1, embeddingLength: 32, headCount: 2, headCountKv: 1, feedForwardLength: 64 }));
  return { status: 'succeeded', modelPath, trainedTokens: 1000, steps: 1, resumed: false, finalMetrics: { train_loss: 2.5, valid_loss: 2.7 } };
};

function chain(dataNode: Record<string, unknown>, fineTune: Record<string, unknown> = {}, chat?: Record<string, unknown>) {
  const nodes = [dataNode, { id: 'ft', type: 'finetune', config: fineTune }, ...(chat ? [{ id: 'chat', type: 'chat', config: chat }] : [])];
  const edges = [{ source: String(dataNode.id), target: 'ft' }, ...(chat ? [{ source: 'ft', target: 'chat' }] : [])];
  return { name: 'test', nodes, edges };
}

describeEachDialect('built-in nodes', (dialect) => {
  let t: TestDb;
  let services: NodeServices;
  let engine: Engine;
  let workflowDir: string;

  beforeEach(async () => {
    t = await dialect.open();
    ({ services, engine, workflowDir } = workflowTestEngine(t, { 'good.jsonl': JSONL }));
  });
  afterEach(async () => {
    engine.close();
    await t.cleanup();
  });

  it('File Loader → Fine-Tune → Chat: waits on the job, resumes with fine_tuned_model, chats with it', async () => {
    const wf = chain({ id: 'load', type: 'file_loader', config: { path: 'good.jsonl' } }, { epochs: 1, model_name: 'math' }, { prompt: 'What is 2+1?', max_tokens: 8 });
    const started = await engine.run(wf);
    expect(started.status).toBe('waiting');
    expect(started.outputs.load.count).toBe(12);
    const jobId = started.waiting!.jobId;
    expect(await services.jobs.get(jobId)).toMatchObject({ status: 'queued', model: 'nodeai-tiny', hyperparameters: { n_epochs: 1 } });

    const finished = new Promise<string>((resolve) => engine.subscribe((e) => e.type === 'run.finished' && resolve(e.status)));
    await new JobWorker(services.jobs, { train: ggufTrainer }).runNext();
    expect(await finished).toBe('succeeded');

    const run = await engine.getRun(started.runId);
    const ft = run.nodes.find((n) => n.nodeId === 'ft')!.outputs!;
    expect(ft).toMatchObject({
      job_id: jobId,
      status: 'succeeded',
      provider: 'local',
      base_model: 'nodeai-tiny',
      training_examples: 10,
      validation_examples: 2,
      epochs: 1,
      estimated_cost: 0,
      fine_tuned_model: expect.stringMatching(/^ft:nodeai-tiny:math:/),
      train_loss: 2.5,
      valid_loss: 2.7,
    });
    expect(ft.estimated_tokens).toBeGreaterThan(0);
    expect(ft.training_file_id).toMatch(/^file-/);
    const chat = run.nodes.find((n) => n.nodeId === 'chat')!.outputs!;
    expect(typeof chat.reply).toBe('string');
    expect(chat.data).toBe(chat.reply);
    expect(chat.model).toBe(ft.fine_tuned_model);
    expect(chat.usage).toMatchObject({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) });
    expect((await services.models.get(String(ft.fine_tuned_model))).usage_count).toBe(1);
  });

  it('a GGUF base given by its path: checked first, trained as a LoRA adapter by the real trainer, then chatted with', async () => {
    const tiny = { blockCount: 1, embeddingLength: 32, headCount: 2, headCountKv: 1, feedForwardLength: 64 };
    await writeGgufModel(join(workflowDir, 'my-base.gguf'), { ...createTinyModel({ seed: 5, ...tiny }), name: 'my-base' });
    const basePath = join(workflowDir, 'my-base.gguf');
    const wf = chain({ id: 'load', type: 'file_loader', config: { path: 'good.jsonl' } }, { base_model: 'my-base.gguf', epochs: 1, lora_rank: 4, model_name: 'math' }, { prompt: 'What is 2+1?', max_tokens: 8 });
    const started = await engine.run(wf);
    expect(started.status).toBe('waiting');
    const jobId = started.waiting!.jobId;
    expect(await services.jobs.get(jobId)).toMatchObject({ model: basePath, hyperparameters: { n_epochs: 1, lora_rank: 4 } });

    const finished = new Promise<string>((resolve) => engine.subscribe((e) => e.type === 'run.finished' && resolve(e.status)));
    await new JobWorker(services.jobs, { threads: 1 }).runNext();
    expect(await finished).toBe('succeeded');
    const run = await engine.getRun(started.runId);
    const ft = run.nodes.find((n) => n.nodeId === 'ft')!.outputs!;
    // Stored outputs show paths below the data dir from it (the store's redactor hides the data dir).
    expect(ft).toMatchObject({ status: 'succeeded', base_model: join('wf', 'my-base.gguf'), lora_rank: 4, training_examples: 10, estimated_cost: 0, fine_tuned_model: expect.stringMatching(/^ft:my-base:math:/) });
    expect(ft.train_loss).toBeGreaterThan(0);
    const record = await services.models.get(String(ft.fine_tuned_model));
    expect(record.files).toMatchObject({ model: expect.stringMatching(/\.gguf$/), adapter: expect.stringMatching(/\.lora\.gguf$/) });
    const chat = run.nodes.find((n) => n.nodeId === 'chat')!.outputs!;
    expect(chat).toMatchObject({ model: ft.fine_tuned_model, reply: expect.any(String) });

    // The fine-tuned model trains further (continued fine-tuning) by its name: the job records the
    // name, not a path in the store, and the trainer starts from the model's file.
    const more = await engine.run(chain({ id: 'd', type: 'data_loader', config: { text: JSONL } }, { base_model: ft.fine_tuned_model, epochs: 1, model_name: 'more' }));
    expect(more.status).toBe('waiting');
    expect(await services.jobs.get(more.waiting!.jobId)).toMatchObject({ model: ft.fine_tuned_model });
    const moreDone = new Promise<string>((resolve) => engine.subscribe((e) => e.type === 'run.finished' && e.runId === more.runId && resolve(e.status)));
    await new JobWorker(services.jobs, { threads: 1 }).runNext();
    expect(await moreDone).toBe('succeeded');
    const moreFt = (await engine.getRun(more.runId)).nodes.find((n) => n.nodeId === 'ft')!.outputs!;
    expect(moreFt).toMatchObject({ base_model: ft.fine_tuned_model, fine_tuned_model: expect.stringMatching(/^ft:my-base:more:/) });

    // Without a rank, a model of this (tiny) size trains every weight, as nodeai-tiny does.
    const queued = await engine.run(chain({ id: 'd', type: 'data_loader', config: { text: JSONL } }, { base_model: basePath, wait_for_completion: false }));
    expect((await services.jobs.get(String(queued.outputs.ft.job_id))).hyperparameters).not.toHaveProperty('lora_rank');

    // Tokens were counted with the base's own tokenizer and chat template: ChatML on a byte-level
    // vocabulary, as nodeai-tiny's catalogue count is (a job queued last: nothing trains it here).
    const builtIn = await engine.run(chain({ id: 'load', type: 'file_loader', config: { path: 'good.jsonl' } }, { epochs: 1, wait_for_completion: false }));
    expect(ft.estimated_tokens).toBeGreaterThan(0);
    expect(ft.estimated_tokens).toBe(builtIn.outputs.ft.estimated_tokens);
  });

  it('early_stopping_patience goes to the local job; without validation examples it says it cannot apply', async () => {
    const warnings: string[] = [];
    engine.subscribe((e) => e.type === 'node.log' && e.level === 'warn' && warnings.push(e.message));
    const data = { id: 'd', type: 'data_loader', config: { text: JSONL } };
    const withValidation = await engine.run(chain(data, { early_stopping_patience: 2, wait_for_completion: false }));
    expect(await services.jobs.get(String(withValidation.outputs.ft.job_id))).toMatchObject({ hyperparameters: { early_stopping_patience: 2 } });
    expect(warnings.join('\n')).not.toContain('early_stopping_patience');
    await engine.run(chain(data, { early_stopping_patience: 2, validation_split: 0, wait_for_completion: false }));
    expect(warnings.join('\n')).toContain('early_stopping_patience needs validation examples');
  });

  it('the device setting goes to the local job (auto by default)', async () => {
    const data = { id: 'd', type: 'data_loader', config: { text: JSONL } };
    const forced = await engine.run(chain(data, { device: 'cpu', wait_for_completion: false }));
    expect((await services.jobs.get(String(forced.outputs.ft.job_id)))?.metadata).toMatchObject({ [DEVICE_METADATA_KEY]: 'cpu' });
    const auto = await engine.run(chain(data, { wait_for_completion: false }));
    expect((await services.jobs.get(String(auto.outputs.ft.job_id)))?.metadata ?? {}).not.toHaveProperty(DEVICE_METADATA_KEY);
  });

  it("a GGUF base's context: longer examples are left out by name, with its own tokenizer", async () => {
    const small = createTinyModel({ seed: 5, blockCount: 1, embeddingLength: 32, headCount: 2, headCountKv: 1, feedForwardLength: 64, contextLength: 64 });
    await writeGgufModel(join(workflowDir, 'short.gguf'), { ...small, name: 'short' });
    const long = JSON.stringify({ messages: [{ role: 'user', content: 'Tell me everything. '.repeat(5) }, { role: 'assistant', content: 'No.' }] });
    const warnings: string[] = [];
    engine.subscribe((e) => e.type === 'node.log' && e.level === 'warn' && warnings.push(e.message));
    const result = await engine.run(chain({ id: 'd', type: 'data_loader', config: { text: JSONL + long + '\n' } }, { base_model: 'short.gguf', wait_for_completion: false, validation_split: 0 }));
    expect(result.status).toBe('succeeded');
    expect(result.outputs.ft).toMatchObject({ training_examples: 12 });
    expect(warnings.join('\n')).toMatch(/Left out 1 example longer than short's context of 64 tokens: line 13 \(\d+ tokens\)/);
  });

  it('a wrong GGUF base is refused before any job: missing, an adapter, not a chat model', async () => {
    const data = { id: 'd', type: 'data_loader', config: { text: JSONL } };
    const missing = await engine.run(chain(data, { base_model: 'nope.gguf' }));
    expect(missing.error).toMatchObject({ code: 'base_model_not_found', message: expect.stringContaining(join('wf', 'nope.gguf')) });
    writeFileSync(join(workflowDir, 'junk.gguf'), 'not a model');
    const junk = await engine.run(chain(data, { base_model: 'junk.gguf' }));
    expect(junk.error).toMatchObject({ code: 'invalid_base_model', message: expect.stringMatching(/Cannot fine-tune .*junk\.gguf/) });
    const model = createTinyModel({ seed: 5, blockCount: 1, embeddingLength: 32, headCount: 2, headCountKv: 1, feedForwardLength: 64 });
    await writeGgufModel(join(workflowDir, 'plain.gguf'), { ...model, tokenizer: { ...model.tokenizer, chatTemplate: '' } });
    const plain = await engine.run(chain(data, { base_model: 'plain.gguf' }));
    expect(plain.error).toMatchObject({ code: 'invalid_base_model', message: expect.stringContaining('no chat template') });
    expect((await services.jobs.list()).data).toHaveLength(0);
  });

  it('wait_for_completion: false outputs the job at once', async () => {
    const result = await engine.run(chain({ id: 'd', type: 'data_loader', config: { text: JSONL } }, { wait_for_completion: false, epochs: 'auto' }));
    expect(result.status).toBe('succeeded');
    expect(result.outputs.ft).toMatchObject({ job_id: expect.stringMatching(/^ftjob-/), status: 'queued', epochs: 10, training_examples: 10 });
  });

  it('training_file_id without an input trains that file; missing and foreign IDs are clear errors', async () => {
    const file = await t.store.files.put(Readable.from([JSONL]), { filename: 'train.jsonl' });
    const ok = await engine.run({ name: 'x', nodes: [{ id: 'ft', type: 'finetune', config: { training_file_id: file.id, wait_for_completion: false } }], edges: [] });
    expect(ok.status).toBe('succeeded');

    const foreign = await engine.run({ name: 'x', nodes: [{ id: 'ft', type: 'finetune', config: { training_file_id: 'file-ZZZZZZZZZZZZZZZZZZZZZZZZ' } }], edges: [] });
    expect(foreign.error).toMatchObject({ code: 'file_not_found', message: expect.stringMatching(/file-Z+ is not in this store/) });
    const bad = await engine.run({ name: 'x', nodes: [{ id: 'ft', type: 'finetune', config: { training_file_id: '../secret.key' } }], edges: [] });
    expect(bad.error?.code).toBe('invalid_file_id');
    const missing = await engine.run({ name: 'x', nodes: [{ id: 'l', type: 'file_loader', config: { file_id: 'file-ZZZZZZZZZZZZZZZZZZZZZZZZ' } }], edges: [] });
    expect(missing.error).toMatchObject({ code: 'file_not_found', message: expect.stringContaining('is not in this store') });
  });
});

describe('Fine-Tune and loader errors', () => {
  let t: TestDb;
  let engine: Engine;
  let services: NodeServices;
  const run = (wf: unknown) => engine.run(wf);
  const only = (config: Record<string, unknown>) => ({ name: 'x', nodes: [{ id: 'ft', type: 'finetune', config }], edges: [] });

  beforeEach(async () => {
    const { makeSqlite } = await import('./test-support.ts');
    t = await makeSqlite();
    services = createNodeServices(t.store, { workflowDir: t.dataDir, openai: { retry: { maxRetries: 1, initialDelayMs: 10 } } });
    engine = new Engine({ store: t.store, registry: createNodeRegistry(), services: { nodeai: services } });
  });
  afterEach(async () => {
    await services.remoteJobs.stop();
    engine.close();
    await t.cleanup();
    delete process.env.OPENAI_API_KEY;
  });

  it('no data and no training_file_id: "No training data provided" and the fix', async () => {
    const r = await run(only({}));
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('no_training_data');
    expect(r.error?.message).toMatch(/^Node "ft" \(finetune\) failed: No training data provided\. Connect a File Loader or Data Loader/);
    const nodeMessage = (await engine.getRun(r.runId)).nodes[0].error!.message;
    expect(nodeMessage.replace(/^Node "ft" \(finetune\) failed: /, '')).toMatch(/^No training data provided/);
  });

  it('an unknown format names the line and the expected shapes', async () => {
    const text = JSON.stringify({ question: 'x', answer: 'y' }) + '\n' + JSONL;
    const r = await run(chain({ id: 'd', type: 'data_loader', config: { text } }));
    expect(r.error?.message).toContain("line 1: Training example must have 'messages' or 'prompt'/'completion'");
    expect(r.error).toMatchObject({ nodeId: 'd' });
  });

  it('data with errors fails Fine-Tune with the example numbers', async () => {
    const examples = [...Array.from({ length: 11 }, (_, i) => example(i)), { messages: [{ role: 'user', content: 'no answer' }] }];
    const engine2 = new Engine({
      store: t.store,
      registry: createNodeRegistry([(await import('../engine/testing.ts')).constantNode]),
      services: { nodeai: createNodeServices(t.store) },
    });
    const r = await engine2.run({ name: 'x', nodes: [{ id: 'c', type: 'test_constant', config: { value: examples } }, { id: 'ft', type: 'finetune', config: {} }], edges: [{ source: 'c', target: 'ft' }] });
    expect(r.error?.code).toBe('invalid_training_data');
    expect(r.error?.message).toMatch(/line 12.*assistant/);
    engine2.close();
  });

  it('a learning rate that does not fit the provider is named', async () => {
    await t.store.secrets.set('OPENAI_API_KEY', 'sk-test-123456');
    const r = await run(chain({ id: 'd', type: 'data_loader', config: { text: JSONL } }, { provider: 'openai', learning_rate: 0.001 }));
    expect(r.error).toMatchObject({ code: 'invalid_config', message: expect.stringMatching(/"learning_rate": learning_rate \(an absolute rate\) is for the local trainer/) });
    expect((await services.jobs.list()).data).toHaveLength(0);
  });

  it('anthropic explains there is no fine-tuning API', async () => {
    const r = await run(only({ provider: 'anthropic' }));
    expect(r.error?.code).toBe('fine_tuning_not_supported');
    expect(r.error?.message).toMatch(/Anthropic offers no fine-tuning API.*Bedrock.*retired.*"local"/);
  });

  it('openai without a key says where to add one; with a key and an unreachable base_url, a clear connection error', async () => {
    delete process.env.OPENAI_API_KEY;
    const r = await run(only({ provider: 'openai' }));
    expect(r.error?.code).toBe('api_key_missing');
    expect(r.error?.message).toMatch(/OpenAI API key not found\. Add it in the node's "api_key" setting, or store it once with "nodeai secrets set OPENAI_API_KEY"/);
    await t.store.secrets.set('OPENAI_API_KEY', 'sk-test-123456', { allowedHosts: ['127.0.0.1:9'] });
    // Port 9 (discard) has no listener on loopback: the connection is refused at once.
    const r2 = await run(chain({ id: 'load', type: 'data_loader', config: { text: JSONL } }, { provider: 'openai', base_url: 'http://127.0.0.1:9/v1' }));
    expect(r2.error?.code).toBe('connection_error');
    expect(r2.error?.message).toMatch(/could not start at OpenAI \(http:\/\/127\.0\.0\.1:9\/v1\).*Lost the connection/);
    expect((await services.jobs.list()).data[0]).toMatchObject({ status: 'failed', error: { code: 'connection_error' } });
    expect(JSON.stringify(await engine.getRun(r2.runId))).not.toContain('sk-test-123456');
  });

  it('a wrong config value, an unknown node type and a cycle are refused before the run, naming the node', async () => {
    await expect(run(only({ epochs: 99 }))).rejects.toThrow(WorkflowValidationError);
    await expect(run(only({ epochs: 99 }))).rejects.toThrow(/node "ft".*epochs/i);
    await expect(run({ name: 'x', nodes: [{ id: 'a', type: 'trainer9000', config: {} }], edges: [] })).rejects.toThrow(/"a".*trainer9000/);
    const cycle = { name: 'x', nodes: [{ id: 'a', type: 'chat', config: { prompt: 'x' } }, { id: 'b', type: 'chat', config: { prompt: 'y' } }], edges: [{ source: 'a', target: 'b' }, { source: 'b', target: 'a' }] };
    await expect(run(cycle)).rejects.toThrow(/cycle/i);
  });

  it('a corrupt upload is a clear error with its line', async () => {
    const file = await t.store.files.put(Readable.from([JSONL.slice(0, 200) + '\n{"messages": [broken\n']), { filename: 'up.jsonl' });
    const r = await run({ name: 'x', nodes: [{ id: 'l', type: 'file_loader', config: { file_id: file.id } }], edges: [] });
    expect(r.error?.message).toMatch(/File "up.jsonl" \(file-\w+\): line \d+: .*JSON/i);
    const bin = await t.store.files.put(Readable.from([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 1, 2, 3])]), { filename: 'photo.jsonl' });
    const r2 = await run({ name: 'x', nodes: [{ id: 'l', type: 'file_loader', config: { file_id: bin.id } }], edges: [] });
    expect(r2.status).toBe('failed');
    expect(r2.error?.message).toContain('photo.jsonl');
  });

  it('File Loader needs exactly one of file_id and path; CSV loads', async () => {
    await expect(run({ name: 'x', nodes: [{ id: 'l', type: 'file_loader', config: {} }], edges: [] })).rejects.toThrow(/exactly one of "file_id"/);
    writeFileSync(join(t.dataDir, 'qa.csv'), 'prompt,completion\nhi,hello\nbye,see you\n');
    const r = await run({ name: 'x', nodes: [{ id: 'l', type: 'file_loader', config: { path: 'qa.csv' } }], edges: [] });
    expect(r.outputs.l.count).toBe(2);
  });

  it('every node describes its settings as JSON Schema for the form', () => {
    const described = createNodeRegistry().describe();
    expect(described.map((d) => d.type)).toEqual(['chat', 'data_loader', 'evaluate', 'file_loader', 'finetune']);
    const ft = described.find((d) => d.type === 'finetune')!.configSchema as { properties: Record<string, { default?: unknown; description?: string }> };
    expect(ft.properties.provider).toMatchObject({ default: 'local', enum: ['local', 'openai', 'anthropic'] });
    expect(ft.properties.base_model.default).toBe('nodeai-tiny');
    expect(ft.properties.validation_split.default).toBe(0.2);
    expect(ft.properties.epochs.default).toBe(3);
    expect(ft.properties.wait_for_completion.default).toBe(true);
    for (const key of ['batch_size', 'learning_rate', 'model_name', 'seed', 'training_file_id']) expect(ft.properties[key]?.description).toBeTruthy();
  });
});

// The Chat node on hf: and ollama: models: downloaded from a loopback hub on first use (progress in
// the run's log), read in place from an Ollama store fixture, answered by llama.cpp itself.
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Engine, type EngineEvent, WorkflowValidationError } from '../engine/index.ts';
import { downloadedModelFile, resolveBaseModel } from '../jobs/fine-tune-service.ts';
import { JobWorker } from '../jobs/index.ts';
import type { TestDb } from '../store/testing.ts';
import { writeGgufModel } from '../trainer/gguf-model.ts';
import { startLoopbackHub, type LoopbackHub } from '../trainer/hub-fixture.ts';
import { disposeInference } from '../trainer/inference.ts';
import { createTinyModel } from '../trainer/tiny-model.ts';
import { createNodeRegistry, createNodeServices, type NodeServices } from './index.ts';
import { makeSqlite } from './test-support.ts';

describe('Chat node with hf: and ollama: models', () => {
  let t: TestDb;
  let hub: LoopbackHub;
  let engine: Engine;
  let gguf: Buffer;
  let ollamaDir: string;
  let services: NodeServices;
  const modelEnv = () => ({ HF_ENDPOINT: hub.endpoint, HOME: t.dataDir, OLLAMA_MODELS: ollamaDir });

  beforeAll(async () => {
    const fixture = await makeSqlite();
    await writeGgufModel(join(fixture.dataDir, 'tiny.gguf'), createTinyModel({ seed: 0 }));
    gguf = await readFile(join(fixture.dataDir, 'tiny.gguf'));
    await fixture.cleanup();
    hub = await startLoopbackHub({ 'acme/Tiny-GGUF': { files: { 'tiny-Q8_0.gguf': gguf } } });
  });
  afterAll(async () => {
    await hub?.close();
    await disposeInference();
  });

  beforeEach(async () => {
    t = await makeSqlite();
    ollamaDir = join(t.dataDir, 'ollama');
    services = createNodeServices(t.store, { modelEnv: modelEnv() });
    engine = new Engine({ store: t.store, registry: createNodeRegistry(), services: { nodeai: services } });
    services.jobs.onFinished((o) => void engine.resumeRunsForJob(o));
  });
  afterEach(async () => {
    engine.close();
    await t.cleanup();
  });

  const chatWith = (model: string) => ({ name: 'chat', nodes: [{ id: 'chat', type: 'chat', config: { model, prompt: 'Hello', max_tokens: 4 } }], edges: [] });

  it('downloads an hf: model on first use, logs the progress, and answers with it; the second run downloads nothing', async () => {
    const logs: string[] = [];
    const off = engine.subscribe((ev: EngineEvent) => {
      if (ev.type === 'node.log') logs.push(ev.message);
    });
    const first = await engine.run(chatWith('hf:acme/Tiny-GGUF:Q8_0'));
    off();
    expect(first.error).toBeUndefined();
    const out = first.outputs.chat!;
    expect(out).toMatchObject({ model: 'hf:acme/Tiny-GGUF:Q8_0', reply: expect.any(String), usage: { completion_tokens: expect.any(Number) } });
    expect(logs).toEqual(expect.arrayContaining([expect.stringMatching(/^downloading hf:acme\/Tiny-GGUF:Q8_0: 100% 3\.4\/3\.4 MB/), 'hf:acme/Tiny-GGUF:Q8_0 downloaded and verified (3.4 MB)']));

    hub.requests.length = 0;
    const second = await engine.run(chatWith('hf:acme/Tiny-GGUF:Q8_0'));
    expect(second.error).toBeUndefined();
    expect(hub.requests).toEqual([]);
  });

  it('reads an ollama: model in place, and says to run ollama pull for one that is missing', async () => {
    const hex = createHash('sha256').update(gguf).digest('hex');
    await mkdir(join(ollamaDir, 'blobs'), { recursive: true });
    await writeFile(join(ollamaDir, 'blobs', `sha256-${hex}`), gguf);
    await mkdir(join(ollamaDir, 'manifests', 'registry.ollama.ai', 'library', 'tiny'), { recursive: true });
    await writeFile(join(ollamaDir, 'manifests', 'registry.ollama.ai', 'library', 'tiny', 'latest'), JSON.stringify({ layers: [{ mediaType: 'application/vnd.ollama.image.model', digest: `sha256:${hex}`, size: gguf.length }] }));
    const ok = await engine.run(chatWith('ollama:tiny'));
    expect(ok.error).toBeUndefined();
    expect(ok.outputs.chat).toMatchObject({ model: 'ollama:tiny', reply: expect.any(String) });

    const missing = await engine.run(chatWith('ollama:qwen2.5:0.5b'));
    expect(missing.error).toMatchObject({ code: 'ollama_not_found', message: expect.stringContaining('ollama pull qwen2.5:0.5b') });
  });

  it('refuses a malformed hf: reference before the run, and names the wrong quant when the hub has none', async () => {
    await expect(engine.run(chatWith('hf:acme'))).rejects.toThrow(WorkflowValidationError);
    const wrong = await engine.run(chatWith('hf:acme/Tiny-GGUF:Q2_K'));
    expect(wrong.error).toMatchObject({ code: 'quant_not_found', message: expect.stringContaining('Quants in the repository: Q8_0') });
  });

  it('fine-tunes an hf: base: the Fine-Tune node downloads it, the job records the reference, the worker trains from the same file', async () => {
    const data = Array.from({ length: 12 }, (_, i) => ({ messages: [{ role: 'user', content: `What is ${i}+1?` }, { role: 'assistant', content: `${i + 1}` }] }));
    const wf = {
      name: 'ft',
      nodes: [
        { id: 'd', type: 'data_loader', config: { text: data.map((x) => JSON.stringify(x)).join('\n') } },
        { id: 'ft', type: 'finetune', config: { base_model: 'hf:acme/Tiny-GGUF:Q8_0', epochs: 1, model_name: 'sums' } },
      ],
      edges: [{ source: 'd', target: 'ft' }],
    };
    const started = await engine.run(wf);
    expect(started.status).toBe('waiting');
    const jobId = started.waiting!.jobId;
    expect(await services.jobs.get(jobId)).toMatchObject({ model: 'hf:acme/Tiny-GGUF:Q8_0' });

    hub.requests.length = 0;
    const finished = new Promise<string>((resolve) => engine.subscribe((e) => e.type === 'run.finished' && resolve(e.status)));
    await new JobWorker(services.jobs, { threads: 1, modelEnv: modelEnv() }).runNext();
    expect(await finished).toBe('succeeded');
    expect(hub.requests).toEqual([]);
    const ft = (await engine.getRun(started.runId)).nodes.find((n) => n.nodeId === 'ft')!.outputs!;
    expect(ft).toMatchObject({ base_model: 'hf:acme/Tiny-GGUF:Q8_0', fine_tuned_model: expect.stringMatching(/^ft:Tiny:sums:/) });

    // An API request does not wait for a download: a model not pulled yet is refused, saying how to pull it.
    await expect(resolveBaseModel('hf:acme/Other-GGUF:Q8_0', 'local', { modelFile: downloadedModelFile(t.dataDir) })).rejects.toMatchObject({
      code: 'not_downloaded',
      message: expect.stringContaining('nodeai models pull hf:acme/Other-GGUF:Q8_0'),
    });
  }, 120_000);
});

// A registered model's export names its base the way Ollama and llama.cpp can find it.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGgufAdapter, writeGgufModel } from '../trainer/gguf-model.ts';
import { loraTensorNames, type NamedTensor } from '../trainer/llama-model.ts';
import { createTinyModel } from '../trainer/tiny-model.ts';
import { exportRegisteredModel } from './model-export.ts';
import type { ModelRecord } from './model-registry.ts';

let dir: string;
let record: (base: string, files?: ModelRecord['files']) => ModelRecord;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-export-jobs-'));
  const model = createTinyModel({ seed: 2, embeddingLength: 64, blockCount: 1, headCount: 4, headCountKv: 2, feedForwardLength: 128 });
  await writeGgufModel(join(dir, 'model.gguf'), model);
  const target = 'blk.0.attn_q.weight';
  const names = loraTensorNames(target);
  const tensor = (name: string, shape: number[]): NamedTensor => ({ name, shape, data: new Float32Array(shape[0] * shape[1]).fill(0.01) });
  await writeGgufAdapter(join(dir, 'model.lora.gguf'), { rank: 2, alpha: 2, targets: [target], tensors: new Map([[names.a, tensor(names.a, [64, 2])], [names.b, tensor(names.b, [2, 64])]]) }, model);
  record = (base, files = { model: join(dir, 'model.gguf'), adapter: join(dir, 'model.lora.gguf') }) => ({
    id: 'ft:Qwen2.5-0.5B-Instruct:bot:1a2b3c4d',
    object: 'model',
    name: 'ft:Qwen2.5-0.5B-Instruct:bot:1a2b3c4d',
    base_model: base,
    provider: 'local',
    job_id: 'ftjob-1a2b3c4d',
    training_examples: 3,
    epochs: 1,
    metrics: null,
    evaluation: null,
    files,
    path: files.model ?? null,
    bytes: null,
    usage_count: 0,
    last_used_at: null,
    created_at: 0,
    updated_at: 0,
  });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

// No ollama binary on PATH and an empty Ollama store: nothing is created, nothing found locally.
const env = { PATH: '', OLLAMA_MODELS: join(tmpdir(), 'nodeai-no-ollama-models') };

describe('exportRegisteredModel', () => {
  it('writes FROM hf.co/OWNER/REPO:QUANT for an hf: base and NAME:TAG for an ollama: base, with the adapter next to the Modelfile', async () => {
    const hf = await exportRegisteredModel(record('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q8_0'), { to: 'ollama', quant: 'q8_0', adapter: true, out: join(dir, 'hf'), dataDir: join(dir, 'data'), env });
    expect(hf.ollama_created).toBe(false);
    expect(hf.files).toEqual([join(dir, 'hf', 'adapter.gguf'), join(dir, 'hf', 'Modelfile')]);
    expect((await readFile(hf.modelfile!, 'utf8')).split('\n').slice(0, 2)).toEqual(['FROM hf.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q8_0', 'ADAPTER ./adapter.gguf']);
    expect((await readFile(join(dir, 'hf', 'adapter.gguf'))).equals(await readFile(join(dir, 'model.lora.gguf')))).toBe(true);

    const ollama = await exportRegisteredModel(record('ollama:llama3.2:1b'), { to: 'ollama', quant: 'q8_0', adapter: true, out: join(dir, 'ollama'), dataDir: join(dir, 'data'), env });
    expect((await readFile(ollama.modelfile!, 'utf8')).split('\n')[0]).toBe('FROM llama3.2:1b');
  });

  it('says what to do when there is nothing to export', async () => {
    await expect(exportRegisteredModel(record('nodeai-tiny', { model: join(dir, 'model.gguf') }), { to: 'gguf', quant: 'f16', adapter: true, out: dir, dataDir: dir, env })).rejects.toThrow(/has no LoRA adapter; export it without --adapter/);
    await expect(exportRegisteredModel({ ...record('gpt-4o-mini-2024-07-18', {}), provider: 'openai' }, { to: 'gguf', quant: 'f16', out: dir, dataDir: dir, env })).rejects.toThrow(/was trained by openai and has no model file here/);
    await expect(exportRegisteredModel(record('/nowhere/base.gguf'), { to: 'ollama', quant: 'f16', adapter: true, out: join(dir, 'nowhere'), dataDir: dir, env })).rejects.toThrow(/neither on this machine nor known to Ollama by name; export the merged model instead/);
  });
});

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelRegistry } from '../jobs/index.ts';
import { createStore } from '../store/index.ts';
import { BENCHMARK_FIGURES, COMPUTED_CATALOG_SIZES } from '../trainer/base-catalog.ts';
import { encodeChatForTraining } from '../trainer/chat-format.ts';
import { writeGgufAdapter, writeGgufModel, writeGgufModelWeights } from '../trainer/gguf-model.ts';
import { startLoopbackHub, type LoopbackHub } from '../trainer/hub-fixture.ts';
import { TINY_BASE_SEED } from '../trainer/tiny-model-file.ts';
import { createTinyModel } from '../trainer/tiny-model.ts';
import { createTokenizer } from '../trainer/tokenizer.ts';
import { createTrainer } from '../trainer/train.ts';

const BIN = fileURLToPath(new URL('../../bin/nodeai.js', import.meta.url));
const exec = promisify(execFile);
// Each test spawns the real CLI several times; on a busy two-core machine one start takes seconds.
const CLI_TEST_MS = 240_000;

let root: string;
let hub: LoopbackHub;
let gguf: Buffer;

async function nodeai(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], {
      env: { ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: '', HOME: root, OLLAMA_MODELS: join(root, 'ollama'), DATABASE_URL: '', ...env },
      maxBuffer: 16 << 20,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'nodeai-models-cli-'));
  await writeGgufModel(join(root, 'tiny.gguf'), createTinyModel({ seed: 0 }));
  gguf = await readFile(join(root, 'tiny.gguf'));
  // The catalogue's SmolLM2 360M repository, served with a small real GGUF in place of the real file.
  hub = await startLoopbackHub({ 'bartowski/SmolLM2-360M-Instruct-GGUF': { files: { 'SmolLM2-360M-Instruct-Q8_0.gguf': gguf } } });
});

afterAll(async () => {
  await hub?.close();
  await rm(root, { recursive: true, force: true });
});

describe('nodeai models pull / catalog (the real CLI)', () => {
  it('pulls an hf: model once with progress lines, then finds it without the network; the catalogue shows it downloaded', async () => {
    const dataDir = join(root, 'data-pull');
    const first = await nodeai(['models', 'pull', 'hf:bartowski/SmolLM2-360M-Instruct-GGUF:q8_0', '--data-dir', dataDir]);
    expect(first.stderr).toMatch(/hf:bartowski\/SmolLM2-360M-Instruct-GGUF:Q8_0 \(SmolLM2-360M-Instruct-Q8_0\.gguf\): 100% 3\.4 MB\/3\.4 MB {2}[\d.]+ [kMG]B\/s {2}ETA 0s/);
    expect(first.stdout).toMatch(/^Downloaded hf:bartowski\/SmolLM2-360M-Instruct-GGUF:Q8_0 \(3\.4 MB, verified\) → .*SmolLM2-360M-Instruct-Q8_0\.gguf$/m);
    expect(first.code).toBe(0);

    hub.requests.length = 0;
    // By catalogue ID: the same file, already here.
    const again = await nodeai(['models', 'pull', 'smollm2-360m-instruct', '--data-dir', dataDir, '--json']);
    expect(again.code).toBe(0);
    const pulled = JSON.parse(again.stdout) as { status: string; downloaded: boolean; path: string; bytes: number };
    expect(pulled).toMatchObject({ status: 'succeeded', downloaded: false, bytes: gguf.length });
    expect(hub.requests).toEqual([]);

    const catalog = await nodeai(['models', 'catalog', '--json', '--data-dir', dataDir]);
    expect(catalog.code).toBe(0);
    const list = JSON.parse(catalog.stdout) as { object: string; data: { id: string; downloaded: boolean; local_path: string | null; files: unknown[] }[] };
    expect(list.object).toBe('list');
    expect(list.data.map((m) => m.id)).toEqual(expect.arrayContaining(['smollm2-135m-instruct', 'qwen2.5-0.5b-instruct', 'qwen3-0.6b', 'llama-3.2-1b-instruct', 'gemma-3-270m-it']));
    expect(list.data.find((m) => m.id === 'smollm2-360m-instruct')).toMatchObject({ downloaded: true, local_path: pulled.path });
    expect(list.data.find((m) => m.id === 'qwen3-0.6b')).toMatchObject({ downloaded: false, local_path: null });

    const text = await nodeai(['models', 'catalog', '--data-dir', dataDir]);
    expect(text.stdout).toMatch(/^ID\s+PARAMS\s+ARCH\s+LICENSE\s+CONTEXT\s+DEFAULT\s+SIZE\s+TRAIN TOK\/S\s+TRAIN PEAK\s+DOWNLOADED\s+URI$/m);
    // No benchmark config has SmolLM2-360M's shapes, so its training figures are unknown, not guessed.
    expect(text.stdout).toMatch(/^smollm2-360m-instruct\s+0\.36B\s+llama\s+apache-2\.0\s+8192\s+Q8_0\s+0\.39 GB\s+\?\s+\?\s+yes\s+hf:bartowski\/SmolLM2-360M-Instruct-GGUF:Q8_0$/m);
    // A size the hub gave none for is llama.cpp's quantizer's, marked "≈" and explained below the table.
    const smol135 = COMPUTED_CATALOG_SIZES.models['smollm2-135m-instruct']!.files.Q8_0!.bytes;
    expect(text.stdout).toMatch(new RegExp(`^smollm2-135m-instruct\\s+\\S+\\s+llama\\s+apache-2\\.0\\s+8192\\s+Q8_0\\s+≈${(smol135 / 1e9).toFixed(2).replace('.', '\\.')} GB\\s`, 'm'));
    expect(text.stdout).toContain("≈ SIZE: computed by llama.cpp's quantizer (dry run) on the model's tensor shapes");
    // A model with recorded figures shows them, and says what they were measured on.
    for (const [id, fig] of Object.entries(BENCHMARK_FIGURES)) {
      const row = text.stdout.split('\n').find((l) => l.startsWith(`${id} `));
      expect(row?.split(/\s{2,}/)).toEqual(expect.arrayContaining([fig.est_train_tok_s.toLocaleString('en-US'), `${fig.est_peak_rss_mb.toLocaleString('en-US')} MB`]));
      expect(text.stdout).toContain(`  ${id}: ${fig.benchmark.setup}; ${fig.benchmark.machine};`);
    }
  }, CLI_TEST_MS);

  it('ends with exit 1 and what to do for a wrong quant or a missing Ollama model, and 2 for a malformed URI', async () => {
    const dataDir = join(root, 'data-bad');
    const quant = await nodeai(['models', 'pull', 'hf:bartowski/SmolLM2-360M-Instruct-GGUF:Q2_K', '--data-dir', dataDir]);
    expect(quant.code).toBe(1);
    expect(quant.stderr).toMatch(/no GGUF file for quant Q2_K\. Quants in the repository: Q8_0/);

    const ollama = await nodeai(['models', 'pull', 'ollama:qwen2.5:0.5b', '--data-dir', dataDir]);
    expect(ollama.code).toBe(1);
    expect(ollama.stderr).toMatch(/ollama:qwen2\.5:0\.5b is not in Ollama's store .*"ollama pull qwen2\.5:0\.5b"/);

    const bad = await nodeai(['models', 'pull', 'my-fine-tuned-model', '--data-dir', dataDir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/"my-fine-tuned-model" is not something to pull/);
  }, CLI_TEST_MS);
});

describe('nodeai chat --model hf:… (the real CLI)', () => {
  it('downloads the model on first use with progress on stderr, then answers', async () => {
    const dataDir = join(root, 'data-chat');
    const r = await nodeai(['chat', '--model', 'hf:bartowski/SmolLM2-360M-Instruct-GGUF:Q8_0', '--prompt', 'Hello', '--max-tokens', '3', '--data-dir', dataDir]);
    expect(r.stderr).toMatch(/hf:bartowski\/SmolLM2-360M-Instruct-GGUF:Q8_0 \(SmolLM2-360M-Instruct-Q8_0\.gguf\): 100% 3\.4 MB\/3\.4 MB/);
    expect(r.code).toBe(0);
    expect(r.stdout.endsWith('\n')).toBe(true);

    const missing = await nodeai(['chat', '--model', 'ollama:nope', '--prompt', 'Hello', '--data-dir', dataDir]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^nodeai chat: ollama:nope:latest is not in Ollama's store .*"ollama pull nope:latest"/m);
  }, CLI_TEST_MS);
});

describe('nodeai models export (the real CLI)', () => {
  it('exports a LoRA-trained nodeai-tiny for Ollama (printing `ollama create` when Ollama is absent) and as base + adapter for llama.cpp', async () => {
    const dataDir = join(root, 'data-export');
    const jobDir = join(dataDir, 'jobs', 'ftjob-export1');
    await mkdir(jobDir, { recursive: true });
    // A short LoRA run on the real nodeai-tiny base, written as a job writes its files.
    const base = createTinyModel({ seed: TINY_BASE_SEED });
    const tokenizer = await createTokenizer(base);
    const train = [encodeChatForTraining(base, tokenizer, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi?' }, { role: 'assistant', content: 'Hello.' }])];
    await tokenizer.dispose();
    const trainer = createTrainer({ model: base, train, lora: { rank: 2 }, epochs: 2, batchSize: 1, threads: 1 });
    try {
      while (!trainer.done) trainer.step();
      await writeGgufModelWeights(join(jobDir, 'model.gguf'), { ...trainer.exportMerged(), name: 'ft:nodeai-tiny:bot:export1' });
      await writeGgufAdapter(join(jobDir, 'model.lora.gguf'), trainer.exportAdapter(), base);
    } finally {
      trainer.dispose();
    }
    const store = await createStore({ dataDir });
    try {
      const now = Date.now();
      await store.db.insertInto('jobs').values({ id: 'ftjob-export1', provider: 'local', method: 'supervised', base_model: 'nodeai-tiny', status: 'succeeded', training_file: 'file-x', hyperparameters_json: '{}', run_after: now, created_at: now, updated_at: now }).execute();
      await new ModelRegistry(store).register({ job: { id: 'ftjob-export1', base_model: 'nodeai-tiny', provider: 'local', suffix: 'bot' }, files: { model: join(jobDir, 'model.gguf'), adapter: join(jobDir, 'model.lora.gguf') } });
    } finally {
      await store.close();
    }
    const id = 'ft:nodeai-tiny:bot:export1';
    const noOllama = { PATH: dirname(process.execPath) };
    const ollama = await nodeai(['models', 'export', id, '--to', 'ollama', '--out', join(root, 'ollama-out'), '--data-dir', dataDir], noOllama);
    expect(ollama.stderr).toMatch(/converting to Q8_0.*100%/);
    // llama.cpp's per-tensor log stays out of the terminal; only its errors would show.
    expect(ollama.stderr).not.toMatch(/llama_model_loader|type = +f32/);
    expect(ollama.stdout).toContain(`Ollama is not installed here; once it is, create the model with:\n  ollama create nodeai-tiny-bot-export1 -f ${join(root, 'ollama-out', 'Modelfile')}`);
    expect(ollama.code).toBe(0);
    const modelfile = await readFile(join(root, 'ollama-out', 'Modelfile'), 'utf8');
    expect(modelfile).toMatch(/^FROM \.\/model\.gguf\nTEMPLATE """/);
    expect(modelfile).toContain('PARAMETER stop "<|im_end|>"\n');

    const adapter = await nodeai(['models', 'export', id, '--to', 'gguf', '--adapter', '--out', join(root, 'gguf-out'), '--data-dir', dataDir, '--json'], noOllama);
    expect(adapter.code).toBe(0);
    const result = JSON.parse(adapter.stdout);
    const tinyBase = join(dataDir, 'models', 'nodeai-tiny.gguf');
    expect(result).toMatchObject({ object: 'model.export', model: id, to: 'gguf', quant: null, ollama_created: false, command: ['llama-server', '-m', tinyBase, '--lora', result.gguf, '--jinja'] });
    expect((await readFile(result.gguf)).equals(await readFile(join(jobDir, 'model.lora.gguf')))).toBe(true);

    const wrong = await nodeai(['models', 'export', id, '--to', 'docker', '--data-dir', dataDir]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/--to must be one of gguf, ollama, lmstudio \(got "docker"\)/);
  }, CLI_TEST_MS);
});

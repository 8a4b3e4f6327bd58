import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCHMARK_FIGURES } from '../trainer/base-catalog.ts';
import { writeGgufModel } from '../trainer/gguf-model.ts';
import { startLoopbackHub, type LoopbackHub } from '../trainer/hub-fixture.ts';
import { createTinyModel } from '../trainer/tiny-model.ts';

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

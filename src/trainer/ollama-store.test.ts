import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gguf, readGgufHeader, writeGguf } from './gguf.ts';
import { writeGgufModel } from './gguf-model.ts';
import { parseModelRef, type OllamaModelRef } from './model-ref.ts';
import { ModelSourceError } from './model-source-errors.ts';
import { verifiedBlobsDir } from './ollama-blob-check.ts';
import { ollamaModelDirs, resolveOllamaModel } from './ollama-store.ts';
import { createTinyModel } from './tiny-model.ts';

let store: string;
/** NodeAI's data dir, where verified blobs are remembered (never in Ollama's store). */
let dataDir: string;
const options = () => ({ env: { OLLAMA_MODELS: store }, dataDir });
const ollama = (text: string) => parseModelRef(text) as OllamaModelRef;

/** Puts `bytes` in the store as NAME:TAG the way `ollama pull` leaves it (`size` null: a manifest without one). */
async function addModel(namespace: string, name: string, tag: string, bytes: Buffer, size: number | null = bytes.length): Promise<string> {
  const hex = createHash('sha256').update(bytes).digest('hex');
  await mkdir(join(store, 'blobs'), { recursive: true });
  await writeFile(join(store, 'blobs', `sha256-${hex}`), bytes);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: `sha256:${'0'.repeat(64)}`, size: 2 },
    layers: [
      { mediaType: 'application/vnd.ollama.image.template', digest: `sha256:${'1'.repeat(64)}`, size: 10 },
      { mediaType: 'application/vnd.ollama.image.model', digest: `sha256:${hex}`, ...(size === null ? {} : { size }) },
    ],
  };
  const dir = join(store, 'manifests', 'registry.ollama.ai', namespace, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, tag), JSON.stringify(manifest));
  return join(store, 'blobs', `sha256-${hex}`);
}

/** A small GGUF of its own (distinct bytes, so a blob of its own). */
async function modelBytes(seed: number): Promise<Buffer> {
  const path = join(store, `seed-${seed}.gguf`);
  await writeGgufModel(path, createTinyModel({ seed, embeddingLength: 32, blockCount: 1, headCount: 2, headCountKv: 2, feedForwardLength: 64 }));
  const bytes = await readFile(path);
  await rm(path);
  return bytes;
}

async function failure(p: Promise<unknown>): Promise<ModelSourceError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(ModelSourceError);
  return e as ModelSourceError;
}

let tiny: Buffer;
beforeAll(async () => {
  store = await mkdtemp(join(tmpdir(), 'nodeai-ollama-'));
  dataDir = await mkdtemp(join(tmpdir(), 'nodeai-ollama-data-'));
  await writeGgufModel(join(store, 'tiny.gguf'), createTinyModel({ seed: 0 }));
  tiny = await readFile(join(store, 'tiny.gguf'));
});
afterAll(async () => {
  await rm(store, { recursive: true, force: true });
  await rm(dataDir, { recursive: true, force: true });
});

describe('ollama: models read in place', () => {
  it('finds the model layer of NAME:TAG, with latest as the default tag and user namespaces', async () => {
    const blob = await addModel('library', 'tiny', 'latest', tiny);
    expect(await resolveOllamaModel(ollama('ollama:tiny'), options())).toEqual({ path: blob, digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), bytes: tiny.length, store });
    await addModel('someone', 'tuned', 'v2', tiny);
    expect((await resolveOllamaModel(ollama('ollama:someone/tuned:v2'), options())).path).toBe(blob);
  });

  it('says to run ollama pull for a model that is not there, naming where it looked', async () => {
    const e = await failure(resolveOllamaModel(ollama('ollama:qwen2.5:0.5b'), options()));
    expect(e.code).toBe('ollama_not_found');
    expect(e.message).toBe(`ollama:qwen2.5:0.5b is not in Ollama's store (looked in ${store}). Pull it first with "ollama pull qwen2.5:0.5b", or set OLLAMA_MODELS to the folder Ollama keeps its models in.`);
  });

  it('refuses blobs the pinned llama.cpp cannot load, with the reason', async () => {
    await addModel('library', 'text', 'latest', Buffer.from('this is not a model, just some text that is long enough'));
    expect(await failure(resolveOllamaModel(ollama('ollama:text'), options()))).toMatchObject({ code: 'not_gguf', message: expect.stringMatching(/ollama:text:latest is not a usable GGUF model: .*bad magic/) });

    const weird = join(store, 'weird.gguf');
    await writeGguf(weird, [['general.architecture', gguf.str('nodeai-vision-9000')]], [{ name: 'w', shape: [4], data: new Float32Array(4) }]);
    await addModel('library', 'weird', '1b', await readFile(weird));
    expect(await failure(resolveOllamaModel(ollama('ollama:weird:1b'), options()))).toMatchObject({
      code: 'unsupported_model',
      message: expect.stringMatching(/ollama:weird:1b has architecture 'nodeai-vision-9000', which the llama\.cpp bundled with node-llama-cpp 3\.21\.1 cannot load/),
    });

    // Q4_2 (ggml type 4) was removed from ggml long ago: llama.cpp cannot read such a tensor. The
    // last tensor gets it, so the data offsets of the others still add up.
    const old = await readFile(join(store, 'tiny.gguf'));
    const last = (await readGgufHeader(join(store, 'tiny.gguf'))).tensors.at(-1)!.name;
    const name = Buffer.from(last);
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(name.length));
    const at = old.indexOf(Buffer.concat([length, name])) + 8 + name.length;
    const dims = old.readUInt32LE(at);
    old.writeInt32LE(4, at + 4 + dims * 8);
    await addModel('library', 'old', 'latest', old);
    expect(await failure(resolveOllamaModel(ollama('ollama:old'), options()))).toMatchObject({
      code: 'unsupported_model',
      message: expect.stringContaining(`ollama:old:latest: tensor '${last}' has ggml type 4, a type the bundled llama.cpp cannot read`),
    });
  });

  it('says to pull again when the blob is missing or its size is wrong', async () => {
    const blob = await addModel('library', 'gone', 'latest', Buffer.from('GGUF-gone'));
    await rm(blob);
    expect(await failure(resolveOllamaModel(ollama('ollama:gone'), options()))).toMatchObject({ code: 'ollama_not_found', message: expect.stringMatching(/blob .* is missing .*run "ollama pull gone:latest" again/) });
    await addModel('library', 'short', 'latest', tiny, tiny.length + 1);
    expect(await failure(resolveOllamaModel(ollama('ollama:short'), options()))).toMatchObject({ code: 'checksum_mismatch' });
  });

  it('says to pull again when a blob\'s bytes do not hash to its name, and writes nothing into Ollama\'s store', async () => {
    const model = await modelBytes(1);
    const blob = await addModel('library', 'flipped', 'latest', model);
    const damaged = Buffer.from(model);
    damaged[damaged.length - 1] ^= 0xff;
    await writeFile(blob, damaged);
    const storeBefore = await readdir(store, { recursive: true });
    const e = await failure(resolveOllamaModel(ollama('ollama:flipped'), options()));
    expect(e).toMatchObject({ code: 'checksum_mismatch', model: 'ollama:flipped:latest' });
    expect(e.message).toMatch(/^ollama:flipped:latest: Ollama's blob .*sha256-[0-9a-f]{64} is damaged: its \d+ bytes hash to sha256:[0-9a-f]{12}…, not to the sha256:[0-9a-f]{12}… it is named by .* Run "ollama pull flipped:latest" again\.$/);
    expect(await readdir(store, { recursive: true })).toEqual(storeBefore);
    expect(existsSync(join(verifiedBlobsDir(dataDir), `${basename(blob)}.json`))).toBe(false);

    // Cut short, under a manifest that gives no size to compare with: the hash finds it.
    const cut = await addModel('someone', 'cut', 'v1', await modelBytes(2), null);
    await writeFile(cut, (await readFile(cut)).subarray(0, 1000));
    expect(await failure(resolveOllamaModel(ollama('ollama:someone/cut:v1'), options()))).toMatchObject({ code: 'checksum_mismatch', message: expect.stringContaining('Run "ollama pull someone/cut:v1" again.') });
  });

  it('hashes a blob once: it is remembered by path, size and mtime in the data dir, and hashed again only when one changes', async () => {
    const blob = await addModel('library', 'remembered', 'latest', await modelBytes(3));
    const mtime = new Date('2026-01-02T03:04:05Z');
    await utimes(blob, mtime, mtime);
    expect((await resolveOllamaModel(ollama('ollama:remembered'), options())).path).toBe(blob);
    const record = JSON.parse(await readFile(join(verifiedBlobsDir(dataDir), `${basename(blob)}.json`), 'utf8'));
    expect(record).toEqual({ path: blob, bytes: (await stat(blob)).size, mtimeMs: mtime.getTime() });

    // Damaged behind its back with the same size and mtime: not read again, so not noticed (this
    // is what saves hashing gigabytes on every use)…
    const bytes = await readFile(blob);
    bytes[bytes.length - 1] ^= 0xff;
    await writeFile(blob, bytes);
    await utimes(blob, mtime, mtime);
    expect((await resolveOllamaModel(ollama('ollama:remembered'), options())).path).toBe(blob);
    // …but a new mtime (any rewrite) makes the next use hash it again.
    await utimes(blob, mtime, new Date(mtime.getTime() + 1000));
    expect(await failure(resolveOllamaModel(ollama('ollama:remembered'), options()))).toMatchObject({ code: 'checksum_mismatch' });
  });

  it('looks in OLLAMA_MODELS only when it is set, else the user and the Linux service stores', () => {
    expect(ollamaModelDirs({ OLLAMA_MODELS: '/srv/ollama' })).toEqual(['/srv/ollama']);
    expect(ollamaModelDirs({ HOME: '/home/ada' })).toEqual(['/home/ada/.ollama/models', '/usr/share/ollama/.ollama/models']);
  });
});

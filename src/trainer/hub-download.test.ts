import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { writeGgufModel } from './gguf-model.ts';
import { startLoopbackHub, type LoopbackHub } from './hub-fixture.ts';
import { hubRepoDir, resolveHubModel, type DownloadProgress } from './hub-download.ts';
import { parseModelRef, type HubModelRef } from './model-ref.ts';
import { ModelSourceError } from './model-source-errors.ts';
import { createTinyModel } from './tiny-model.ts';

const OWNER = 'acme';
const REPO = 'Tiny-Instruct-GGUF';
const Q8 = 'tiny-instruct-Q8_0.gguf';
const Q4 = 'tiny-instruct-Q4_K_M.gguf';

let root: string;
let gguf: Buffer;
let other: Buffer;
let hub: LoopbackHub;
let dataDir: string;
let env: NodeJS.ProcessEnv;

const hf = (text: string) => parseModelRef(text) as HubModelRef;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const fileHash = async (path: string) => sha256(await readFile(path));
const cdnGets = () => hub.requests.filter((r) => r.method === 'GET' && r.url.startsWith('/cdn/'));

async function failure(p: Promise<unknown>): Promise<ModelSourceError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ModelSourceError);
  return e as ModelSourceError;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'nodeai-hub-'));
  await writeGgufModel(join(root, 'a.gguf'), createTinyModel({ seed: 0 }));
  await writeGgufModel(join(root, 'b.gguf'), createTinyModel({ seed: 1 }));
  gguf = await readFile(join(root, 'a.gguf'));
  other = await readFile(join(root, 'b.gguf'));
  hub = await startLoopbackHub({
    [`${OWNER}/${REPO}`]: { files: { [Q8]: gguf, [Q4]: other, 'README.md': Buffer.from('# Tiny\n') } },
    'acme/Gated-GGUF': { files: { 'gated-Q8_0.gguf': gguf }, token: 'hf_secret' },
    'acme/Not-GGUF': { files: { 'fake-Q8_0.gguf': Buffer.alloc(4096, 7) } },
  });
});

afterAll(async () => {
  await hub?.close();
  await rm(root, { recursive: true, force: true });
});

beforeEach(async () => {
  dataDir = await mkdtemp(join(root, 'data-'));
  env = { HF_ENDPOINT: hub.endpoint, HOME: root };
  hub.requests.length = 0;
  hub.dropAfterBytes = undefined;
  hub.corruptNextBody = false;
  hub.stallAfterBytes = undefined;
  hub.misrangeNext = false;
  hub.forceStatus = undefined;
});

describe('resolveHubModel against a loopback hub (HF_ENDPOINT)', () => {
  it('downloads hf:OWNER/REPO:QUANT once, verified, with progress, and never twice', async () => {
    const progress: DownloadProgress[] = [];
    const first = await resolveHubModel(hf(`hf:${OWNER}/${REPO}:q8_0`), { dataDir, env, onProgress: (p) => progress.push(p) });
    expect(first).toMatchObject({ file: Q8, bytes: gguf.length, sha256: sha256(gguf), commit: 'a'.repeat(40), downloaded: true });
    expect(first.path).toBe(join(hubRepoDir(dataDir, { owner: OWNER, repo: REPO }), Q8));
    expect(await fileHash(first.path)).toBe(sha256(gguf));
    expect(existsSync(`${first.path}.part`)).toBe(false);
    // The manifest was asked with llama.cpp's user agent (the hub adds ggufFile only for it).
    expect(hub.requests.find((r) => r.url.startsWith('/v2/'))).toMatchObject({ url: `/v2/${OWNER}/${REPO}/manifests/Q8_0`, userAgent: 'llama-cpp' });
    expect(cdnGets()).toHaveLength(1);
    const last = progress.at(-1)!;
    expect(last).toMatchObject({ model: `hf:${OWNER}/${REPO}:Q8_0`, file: Q8, bytes: gguf.length, total: gguf.length, etaSeconds: 0 });
    expect(last.bytesPerSecond).toBeGreaterThan(0);

    hub.requests.length = 0;
    const again = await resolveHubModel(hf(`hf:${OWNER}/${REPO}:Q8_0`), { dataDir, env });
    expect(again).toMatchObject({ path: first.path, downloaded: false });
    // The same file named directly is the same download.
    expect(await resolveHubModel(hf(`hf:${OWNER}/${REPO}/${Q8}`), { dataDir, env })).toMatchObject({ path: first.path, downloaded: false });
    expect(hub.requests).toEqual([]);
  });

  it('resolves hf:OWNER/REPO/FILE.gguf through the 302 to the CDN, and shares one download between concurrent calls', async () => {
    const ref = hf(`hf:${OWNER}/${REPO}/${Q4}`);
    const [a, b] = await Promise.all([resolveHubModel(ref, { dataDir, env }), resolveHubModel(ref, { dataDir, env })]);
    expect(a.path).toBe(b.path);
    expect(await fileHash(a.path)).toBe(sha256(other));
    expect(cdnGets()).toHaveLength(1);
    expect(hub.requests.some((r) => r.method === 'HEAD' && r.url === `/${OWNER}/${REPO}/resolve/main/${Q4}`)).toBe(true);
  });

  it('resumes an interrupted download with Range and checks the whole file', async () => {
    hub.dropAfterBytes = 1_000_000;
    const ref = hf(`hf:${OWNER}/${REPO}:Q8_0`);
    const broken = await failure(resolveHubModel(ref, { dataDir, env }));
    expect(broken.code).toBe('hub_unavailable');
    expect(broken.message).toMatch(/run it again to resume/);
    const final = join(hubRepoDir(dataDir, ref), Q8);
    expect(existsSync(final)).toBe(false);
    const kept = (await stat(`${final}.part`)).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(gguf.length);

    const done = await resolveHubModel(ref, { dataDir, env });
    expect(await fileHash(done.path)).toBe(sha256(gguf));
    expect(cdnGets().at(-1)?.range).toBe(`bytes=${kept}-`);
    expect(existsSync(`${final}.part`)).toBe(false);
  });

  it('starts over when a resumed download is answered with another byte range', async () => {
    const ref = hf(`hf:${OWNER}/${REPO}:Q8_0`);
    const final = join(hubRepoDir(dataDir, ref), Q8);
    hub.dropAfterBytes = 500_000;
    await failure(resolveHubModel(ref, { dataDir, env }));
    hub.misrangeNext = true;
    const e = await failure(resolveHubModel(ref, { dataDir, env }));
    expect(e.message).toMatch(/another byte range \(bytes 0-\d+\/\d+\); the partial file was removed/);
    expect(existsSync(`${final}.part`)).toBe(false);
    expect(await fileHash((await resolveHubModel(ref, { dataDir, env })).path)).toBe(sha256(gguf));
  });

  it('refuses a corrupt body: checksum mismatch, the .part removed, nothing kept', async () => {
    hub.corruptNextBody = true;
    const ref = hf(`hf:${OWNER}/${REPO}:Q8_0`);
    const e = await failure(resolveHubModel(ref, { dataDir, env }));
    expect(e.code).toBe('checksum_mismatch');
    expect(e.message).toContain(`hf:${OWNER}/${REPO}:Q8_0`);
    expect(e.message).toMatch(/sha256 is [0-9a-f]{64}, the hub's is [0-9a-f]{64}.*pull again/);
    const final = join(hubRepoDir(dataDir, ref), Q8);
    expect(existsSync(final)).toBe(false);
    expect(existsSync(`${final}.part`)).toBe(false);
    // A clean retry works.
    expect(await fileHash((await resolveHubModel(ref, { dataDir, env })).path)).toBe(sha256(gguf));
  });

  it('sends HF_TOKEN as a Bearer token; without one a gated repo says to accept the license and set HF_TOKEN', async () => {
    const ref = hf('hf:acme/Gated-GGUF:Q8_0');
    const denied = await failure(resolveHubModel(ref, { dataDir, env }));
    expect(denied.code).toBe('hub_unauthorized');
    expect(denied.message).toMatch(/hf:acme\/Gated-GGUF:Q8_0 is gated or private \(HTTP 401.*set HF_TOKEN/);

    const wrong = await failure(resolveHubModel(ref, { dataDir, env: { ...env, HF_TOKEN: 'hf_wrong' } }));
    expect(wrong.message).toMatch(/refused the token in HF_TOKEN/);

    hub.requests.length = 0;
    // The token file "huggingface-cli login" writes works as HF_TOKEN does.
    const tokenFile = join(root, 'hf-token');
    await writeFile(tokenFile, 'hf_secret\n');
    const ok = await resolveHubModel(ref, { dataDir, env: { ...env, HF_TOKEN_PATH: tokenFile } });
    expect(await fileHash(ok.path)).toBe(sha256(gguf));
    expect(hub.requests.filter((r) => !r.url.startsWith('/cdn/')).every((r) => r.authorization === 'Bearer hf_secret')).toBe(true);
  });

  it('names the quants a repository has when the tag is wrong, and says when the repository does not exist', async () => {
    const wrongQuant = await failure(resolveHubModel(hf(`hf:${OWNER}/${REPO}:Q5_K_S`), { dataDir, env }));
    expect(wrongQuant.code).toBe('quant_not_found');
    expect(wrongQuant.message).toMatch(/no GGUF file for quant Q5_K_S\. Quants in the repository: Q8_0, Q4_K_M — e\.g\. hf:acme\/Tiny-Instruct-GGUF:Q4_K_M/);

    const noRepo = await failure(resolveHubModel(hf('hf:acme/Nope-GGUF:Q4_K_M'), { dataDir, env }));
    expect(noRepo.code).toBe('hub_not_found');
    expect(noRepo.message).toMatch(/no repository acme\/Nope-GGUF \(HTTP 404/);

    const noFile = await failure(resolveHubModel(hf(`hf:${OWNER}/${REPO}/missing-Q8_0.gguf`), { dataDir, env }));
    expect(noFile.code).toBe('hub_not_found');
    expect(noFile.message).toMatch(/no file missing-Q8_0\.gguf of acme\/Tiny-Instruct-GGUF/);
  });

  it('says to retry later on HTTP 429, with the wait the hub asked for', async () => {
    hub.forceStatus = 429;
    const e = await failure(resolveHubModel(hf(`hf:${OWNER}/${REPO}:Q8_0`), { dataDir, env }));
    expect(e.code).toBe('hub_rate_limited');
    expect(e.message).toMatch(/rate-limiting.*retry in 7 s/);
  });

  it('refuses a file that is not a GGUF even when its checksum matches, and keeps nothing', async () => {
    const ref = hf('hf:acme/Not-GGUF:Q8_0');
    const e = await failure(resolveHubModel(ref, { dataDir, env }));
    expect(e.code).toBe('not_gguf');
    expect(e.message).toMatch(/hf:acme\/Not-GGUF:Q8_0 is not a usable GGUF model: .*bad magic/);
    const final = join(hubRepoDir(dataDir, ref), 'fake-Q8_0.gguf');
    expect(existsSync(final) || existsSync(`${final}.part`)).toBe(false);
  });

  it('cleans up the .part when the disk fills mid-download (ENOSPC)', async () => {
    const ref = hf(`hf:${OWNER}/${REPO}:Q8_0`);
    const final = join(hubRepoDir(dataDir, ref), Q8);
    await mkdir(hubRepoDir(dataDir, ref), { recursive: true });
    // Writes to /dev/full fail with ENOSPC, as a full disk does.
    await symlink('/dev/full', `${final}.part`);
    const e = await failure(resolveHubModel(ref, { dataDir, env }));
    expect(e.code).toBe('disk_full');
    expect(e.message).toMatch(/is full \(the file needs \d+ MiB\); the partial download of hf:acme\/Tiny-Instruct-GGUF:Q8_0 was removed/);
    expect(existsSync(`${final}.part`) || existsSync(final)).toBe(false);
  });

  it('stops on its AbortSignal and keeps the partial file for the next call', async () => {
    const controller = new AbortController();
    const ref = hf(`hf:${OWNER}/${REPO}:Q8_0`);
    const final = join(hubRepoDir(dataDir, ref), Q8);
    hub.stallAfterBytes = 100_000;
    const pending = failure(resolveHubModel(ref, { dataDir, env, signal: controller.signal }));
    // Stop once the first bytes are on disk and the hub has gone quiet.
    while (!(await stat(`${final}.part`).then((s) => s.size >= 100_000, () => false))) await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    const e = await pending;
    expect(e.code).toBe('aborted');
    expect(e.message).toMatch(/stopped; run it again to resume/);
    expect(existsSync(final)).toBe(false);
    expect((await stat(`${final}.part`)).size).toBeGreaterThan(0);
    expect(await fileHash((await resolveHubModel(ref, { dataDir, env })).path)).toBe(sha256(gguf));
  });

  it('waits while another live process holds the repository lock, and takes over a dead one\'s', async () => {
    const ref = hf(`hf:${OWNER}/${REPO}:Q8_0`);
    const lock = join(hubRepoDir(dataDir, ref), '.nodeai-hub.lock');
    await mkdir(hubRepoDir(dataDir, ref), { recursive: true });
    // The test runner's parent process is alive: its lock is respected until it goes away.
    await writeFile(lock, String(process.ppid));
    const started = Date.now();
    const pending = resolveHubModel(ref, { dataDir, env });
    await new Promise((r) => setTimeout(r, 700));
    expect(cdnGets()).toHaveLength(0);
    await rm(lock);
    expect(await fileHash((await pending).path)).toBe(sha256(gguf));
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    expect(existsSync(lock)).toBe(false);

    // A PID that cannot exist (above Linux's pid_max): the lock is stale and taken over at once.
    await writeFile(lock, '4194305');
    expect(await fileHash((await resolveHubModel(hf(`hf:${OWNER}/${REPO}:Q4_K_M`), { dataDir, env })).path)).toBe(sha256(other));
  });

  it('with download: false only finds what is already here', async () => {
    const e = await failure(resolveHubModel(hf(`hf:${OWNER}/${REPO}:Q8_0`), { dataDir, env, download: false }));
    expect(e.code).toBe('not_downloaded');
    expect(e.message).toMatch(/nodeai models pull hf:acme\/Tiny-Instruct-GGUF:Q8_0/);
    expect(hub.requests).toEqual([]);
  });
});

// `hf:` models: find the file on the Hugging Face hub, download it once into the data dir, resume
// an interrupted download with Range, and keep it only when its size and checksum match the hub's.
//
// The hub's contract (as llama.cpp's `-hf` and node-llama-cpp use it): GET
// {endpoint}/v2/OWNER/REPO/manifests/TAG with User-Agent "llama-cpp" answers the GGUF for a quant
// tag in `ggufFile` ({rfilename, size, lfs: {sha256}}); files are at
// {endpoint}/OWNER/REPO/resolve/main/PATH, whose HEAD answers X-Repo-Commit, ETag (for LFS files
// the sha256, as X-Linked-Etag when it redirects to the CDN), X-Linked-Size, and whose GET honours
// Range. HF_ENDPOINT points at a mirror (or a loopback hub in tests); HF_TOKEN authorizes.
//
// Why not node-llama-cpp's resolveModelFile here: its manifest lookup keeps only the file name
// (the hub's sha256 is dropped), and its downloader (ipull) renames a finished file to its final
// name before anyone could check it. NodeAI's rule is that no unverified byte is ever used, so
// the file is written as FILE.part and renamed only once its size, checksum and GGUF header pass.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, statfs, utimes, writeFile, type FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { assertLoadableGguf } from './gguf-loadable.ts';
import type { HubModelRef } from './model-ref.ts';
import { ModelSourceError } from './model-source-errors.ts';

export interface DownloadProgress {
  /** The model reference being fetched. */
  model: string;
  /** File name inside the repository. */
  file: string;
  /** Bytes on disk so far (a resumed download starts above 0). */
  bytes: number;
  /** File size; 0 while unknown. */
  total: number;
  /** Average over this session's transfer, bytes per second. */
  bytesPerSecond: number;
  /** Seconds left at that speed; null while unknown. */
  etaSeconds: number | null;
}

export type ProgressListener = (progress: DownloadProgress) => void;

export interface HubOptions {
  /** The NodeAI data dir; files go to DATA_DIR/models/hf/OWNER/REPO/PATH. */
  dataDir: string;
  /** Read for HF_ENDPOINT, HF_TOKEN, HF_TOKEN_PATH, HF_HOME (default process.env). */
  env?: NodeJS.ProcessEnv;
  onProgress?: ProgressListener;
  /** Stops the download; the partial file is kept so the next call resumes it. */
  signal?: AbortSignal;
  /** false: only a file already downloaded is returned; otherwise `not_downloaded`. Default true. */
  download?: boolean;
}

export interface HubModelFile {
  path: string;
  /** File name inside the repository. */
  file: string;
  bytes: number;
  /** Lower-case hex, when the hub gave one. */
  sha256: string | null;
  /** The repository commit the file came from, when the hub said. */
  commit: string | null;
  /** False when the file was already in the data dir. */
  downloaded: boolean;
}

const DEFAULT_ENDPOINT = 'https://huggingface.co';
const REVISION = 'main';
const STATE_FILE = '.nodeai-hub.json';
const LOCK_FILE = '.nodeai-hub.lock';
const PROGRESS_INTERVAL_MS = 200;

export function hubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/** HF_TOKEN, else the token file huggingface-cli login writes (HF_TOKEN_PATH, HF_HOME/token). */
export async function hubToken(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (env.HF_TOKEN) return env.HF_TOKEN.trim() || undefined;
  const home = env.HF_HOME || join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'huggingface');
  const text = await readFile(env.HF_TOKEN_PATH || join(home, 'token'), 'utf8').catch(() => '');
  return text.trim() || undefined;
}

/** Where `hf:OWNER/REPO…` files are kept. */
export function hubRepoDir(dataDir: string, ref: Pick<HubModelRef, 'owner' | 'repo'>): string {
  return join(dataDir, 'models', 'hf', ref.owner, ref.repo);
}

// --- What has been downloaded: DATA_DIR/models/hf/OWNER/REPO/.nodeai-hub.json -----------------

interface RepoState {
  /** Quant tag (or "latest") → file name, as the hub's manifest answered. */
  tags: Record<string, string>;
  /** Verified files. */
  files: Record<string, { bytes: number; sha256: string | null; commit: string | null; downloaded_at: number }>;
}

async function readState(repoDir: string): Promise<RepoState> {
  try {
    const s = JSON.parse(await readFile(join(repoDir, STATE_FILE), 'utf8')) as Partial<RepoState>;
    return { tags: s.tags ?? {}, files: s.files ?? {} };
  } catch {
    return { tags: {}, files: {} };
  }
}

async function updateState(repoDir: string, change: (s: RepoState) => void): Promise<void> {
  const state = await readState(repoDir);
  change(state);
  const tmp = join(repoDir, `${STATE_FILE}.${process.pid}.tmp`);
  await writeFile(tmp, JSON.stringify(state, null, 2));
  await rename(tmp, join(repoDir, STATE_FILE));
}

/** The verified local file for the reference, or undefined; never touches the network. */
export async function findDownloadedHubModel(ref: HubModelRef, dataDir: string): Promise<HubModelFile | undefined> {
  const repoDir = hubRepoDir(dataDir, ref);
  const state = await readState(repoDir);
  const file = ref.file ?? state.tags[ref.quant ?? 'latest'];
  const entry = file ? state.files[file] : undefined;
  if (!file || !entry) return undefined;
  const path = join(repoDir, file);
  const size = await stat(path).then((s) => (s.isFile() ? s.size : -1), () => -1);
  if (size !== entry.bytes) return undefined;
  return { path, file, bytes: entry.bytes, sha256: entry.sha256, commit: entry.commit, downloaded: false };
}

// --- The hub's HTTP answers --------------------------------------------------------------------

function repoPage(endpoint: string, ref: HubModelRef): string {
  return `${endpoint}/${ref.owner}/${ref.repo}`;
}

function retryAfterSeconds(res: Response): number | undefined {
  const after = Number(res.headers.get('retry-after'));
  if (Number.isFinite(after) && after > 0) return after;
  // The hub's RateLimit header: "api";r=0;t=123 (t = seconds until the window resets).
  const t = /(?:^|;)\s*t=(\d+)/.exec(res.headers.get('ratelimit') ?? '')?.[1];
  return t ? Number(t) : undefined;
}

/** One place that turns the hub's status codes into what the user should do. */
function hubHttpError(res: Response, ref: HubModelRef, what: string, endpoint: string, hasToken: boolean): ModelSourceError {
  const status = `HTTP ${res.status} for ${what}`;
  if (res.status === 401 || res.status === 403) {
    const page = repoPage(endpoint, ref);
    return new ModelSourceError(
      'hub_unauthorized',
      ref.text,
      hasToken
        ? `The hub refused the token in HF_TOKEN for ${ref.text} (${status}). Check that the token can read the repository and that you accepted the model's license at ${page}.`
        : `${ref.text} is gated or private (${status}). Accept the model's license at ${page}, create a read token at https://huggingface.co/settings/tokens and set HF_TOKEN to it.`,
    );
  }
  if (res.status === 404) {
    return new ModelSourceError('hub_not_found', ref.text, `The hub has no ${what} (${status}). Check the owner, repository and file name of ${ref.text} at ${repoPage(endpoint, ref)}.`);
  }
  if (res.status === 429) {
    const wait = retryAfterSeconds(res);
    return new ModelSourceError('hub_rate_limited', ref.text, `The hub is rate-limiting requests (${status}) while fetching ${ref.text}; retry ${wait ? `in ${wait} s` : 'in a few minutes'}${hasToken ? '' : ', or set HF_TOKEN (signed-in users get higher limits)'}.`);
  }
  return new ModelSourceError('hub_unavailable', ref.text, `The hub answered ${status} while fetching ${ref.text}; try again later, or check HF_ENDPOINT (${endpoint}).`);
}

async function hubFetch(url: string, ref: HubModelRef, init: RequestInit & { what: string; endpoint: string }): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    if (init.signal?.aborted) throw abortedError(ref, init.signal);
    throw new ModelSourceError('hub_unavailable', ref.text, `Cannot reach the hub at ${init.endpoint} for ${ref.text} (${(e as Error).cause ?? (e as Error).message}). Check the network, or HF_ENDPOINT for a mirror.`, { cause: e });
  }
}

function abortedError(ref: HubModelRef, signal: AbortSignal): ModelSourceError {
  return new ModelSourceError('aborted', ref.text, `The download of ${ref.text} was stopped; run it again to resume where it left off.`, { cause: signal.reason });
}

/** The quant tag in a GGUF file name (`qwen2.5-0.5b-instruct-q4_k_m.gguf` → Q4_K_M), for hints. */
export function quantOfFileName(file: string): string | undefined {
  return /[-._]((?:I?Q\d|TQ\d|F16|F32|BF16|MXFP4)[A-Za-z0-9_]*)(?:-\d{5}-of-\d{5})?\.gguf$/i.exec(file)?.[1]?.toUpperCase();
}

interface ManifestFile {
  rfilename: string;
  size?: number;
  sha256?: string;
}

async function fetchManifest(ref: HubModelRef, endpoint: string, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<ManifestFile> {
  const tag = ref.quant ?? 'latest';
  const url = `${endpoint}/v2/${encodeURIComponent(ref.owner)}/${encodeURIComponent(ref.repo)}/manifests/${encodeURIComponent(tag)}`;
  const hasToken = 'Authorization' in headers;
  // The hub adds `ggufFile` only for llama.cpp's user agent.
  const res = await hubFetch(url, ref, { headers: { ...headers, 'User-Agent': 'llama-cpp', Accept: 'application/json' }, signal, what: `the manifest of ${ref.text}`, endpoint });
  if (res.status === 400 || res.status === 404) throw await quantNotFound(ref, endpoint, headers, signal, res);
  if (!res.ok) throw hubHttpError(res, ref, `the manifest of ${ref.text}`, endpoint, hasToken);
  const body = (await res.json().catch(() => undefined)) as { ggufFile?: { rfilename?: unknown; size?: unknown; lfs?: { sha256?: unknown; oid?: unknown } } } | undefined;
  const g = body?.ggufFile;
  if (!g || typeof g.rfilename !== 'string' || g.rfilename === '') {
    throw new ModelSourceError('hub_unavailable', ref.text, `The hub's manifest for ${ref.text} names no GGUF file (no ggufFile.rfilename); the repository may hold no GGUF — pick a "-GGUF" repository, or name the file: hf:${ref.owner}/${ref.repo}/FILE.gguf.`);
  }
  const lfsHash = typeof g.lfs?.sha256 === 'string' ? g.lfs.sha256 : typeof g.lfs?.oid === 'string' ? g.lfs.oid.replace(/^sha256:/, '') : undefined;
  return { rfilename: g.rfilename, ...(typeof g.size === 'number' ? { size: g.size } : {}), ...(lfsHash && /^[0-9a-f]{64}$/i.test(lfsHash) ? { sha256: lfsHash.toLowerCase() } : {}) };
}

/** A manifest 400/404: no such repository, or no file for the quant — say which, and what exists. */
async function quantNotFound(ref: HubModelRef, endpoint: string, headers: Record<string, string>, signal: AbortSignal | undefined, manifestRes: Response): Promise<ModelSourceError> {
  const res = await hubFetch(`${endpoint}/api/models/${encodeURIComponent(ref.owner)}/${encodeURIComponent(ref.repo)}`, ref, { headers, signal, what: 'the repository', endpoint });
  if (!res.ok) return hubHttpError(res.status === 404 ? res : manifestRes, ref, res.status === 404 ? `repository ${ref.owner}/${ref.repo}` : `the manifest of ${ref.text}`, endpoint, 'Authorization' in headers);
  const info = (await res.json().catch(() => ({}))) as { siblings?: { rfilename?: string }[] };
  const ggufs = (info.siblings ?? []).map((s) => s.rfilename ?? '').filter((f) => /\.gguf$/i.test(f));
  const quants = [...new Set(ggufs.map(quantOfFileName).filter((q): q is string => !!q))];
  const available = quants.length
    ? `Quants in the repository: ${quants.join(', ')} — e.g. hf:${ref.owner}/${ref.repo}:${quants.includes('Q4_K_M') ? 'Q4_K_M' : quants[0]}.`
    : ggufs.length
      ? `Its GGUF files: ${ggufs.slice(0, 8).join(', ')} — name one as hf:${ref.owner}/${ref.repo}/FILE.gguf.`
      : 'It has no .gguf files; pick a "-GGUF" repository.';
  return new ModelSourceError('quant_not_found', ref.text, `${ref.owner}/${ref.repo} has no GGUF file for quant ${ref.quant ?? '(default)'}. ${available}`);
}

// --- Download ------------------------------------------------------------------------------

interface Expected {
  bytes?: number;
  sha256?: string;
  /** Git blob SHA-1 (the hub's ETag for files not stored in LFS). */
  gitSha1?: string;
  commit?: string;
}

function parseEtag(value: string | null): string | undefined {
  const m = /^(?:W\/)?"?([^"]*)"?$/.exec(value?.trim() ?? '');
  return m?.[1] || undefined;
}

async function headFile(url: string, ref: HubModelRef, endpoint: string, headers: Record<string, string>, signal: AbortSignal | undefined, file: string): Promise<Expected> {
  // redirect: manual — the hub answers LFS files with a 302 to the CDN carrying X-Linked-Size and
  // X-Linked-Etag; those, not the CDN's headers, are the hub's word on the file.
  const res = await hubFetch(url, ref, { method: 'HEAD', redirect: 'manual', headers, signal, what: `file ${file} of ${ref.owner}/${ref.repo}`, endpoint });
  if (!(res.ok || (res.status >= 300 && res.status < 400))) throw hubHttpError(res, ref, `file ${file} of ${ref.owner}/${ref.repo}`, endpoint, 'Authorization' in headers);
  const etag = parseEtag(res.headers.get('x-linked-etag')) ?? parseEtag(res.headers.get('etag'));
  const size = Number(res.headers.get('x-linked-size') ?? (res.ok ? res.headers.get('content-length') : NaN));
  const commit = res.headers.get('x-repo-commit');
  return {
    ...(Number.isSafeInteger(size) && size > 0 ? { bytes: size } : {}),
    ...(etag && /^[0-9a-f]{64}$/i.test(etag) ? { sha256: etag.toLowerCase() } : {}),
    ...(etag && /^[0-9a-f]{40}$/i.test(etag) ? { gitSha1: etag.toLowerCase() } : {}),
    ...(commit ? { commit } : {}),
  };
}

class Hashes {
  private readonly sha256 = createHash('sha256');
  private readonly gitSha1: Hash | undefined;
  constructor(expected: Expected) {
    if (expected.gitSha1 && expected.bytes !== undefined) {
      this.gitSha1 = createHash('sha1');
      this.gitSha1.update(`blob ${expected.bytes}\0`);
    }
  }
  update(chunk: Uint8Array): void {
    this.sha256.update(chunk);
    this.gitSha1?.update(chunk);
  }
  digests(): { sha256: string; gitSha1?: string } {
    return { sha256: this.sha256.digest('hex'), ...(this.gitSha1 ? { gitSha1: this.gitSha1.digest('hex') } : {}) };
  }
}

async function partSize(part: string): Promise<number> {
  return stat(part).then((s) => (s.isFile() ? s.size : 0), () => 0);
}

function isDiskFull(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

function diskFull(ref: HubModelRef, dir: string, need: number | undefined, cause?: unknown): ModelSourceError {
  const mb = need ? ` (the file needs ${Math.ceil(need / 2 ** 20)} MiB)` : '';
  return new ModelSourceError('disk_full', ref.text, `The disk holding ${dir} is full${mb}; the partial download of ${ref.text} was removed. Free some space (or use --data-dir on a larger disk) and pull again.`, cause ? { cause } : undefined);
}

interface TransferArgs {
  ref: HubModelRef;
  url: string;
  file: string;
  finalPath: string;
  expected: Expected;
  headers: Record<string, string>;
  endpoint: string;
  signal: AbortSignal | undefined;
  onProgress: ProgressListener | undefined;
}

/** Downloads into FINAL.part (resuming it), verifies, and renames it to FINAL. */
async function transfer(a: TransferArgs): Promise<{ bytes: number; sha256: string }> {
  const { ref, expected } = a;
  const part = `${a.finalPath}.part`;
  await mkdir(dirname(part), { recursive: true });
  let have = await partSize(part);
  if (expected.bytes !== undefined && have > expected.bytes) {
    await rm(part, { force: true });
    have = 0;
  }
  if (expected.bytes !== undefined) {
    const free = await statfs(dirname(part)).then((s) => s.bavail * s.bsize, () => Infinity);
    if (free < expected.bytes - have) throw diskFull(ref, dirname(part), expected.bytes);
  }
  const hashes = new Hashes(expected);
  let res: Response | undefined;
  if (expected.bytes === undefined || have < expected.bytes) {
    // No If-Range: the CDN's ETag is not the hub's sha256, so it would never match; a resume that
    // mixed two versions of the file fails the checksum below and starts over.
    const range: Record<string, string> = have > 0 ? { Range: `bytes=${have}-` } : {};
    res = await hubFetch(a.url, ref, { headers: { ...a.headers, ...range }, signal: a.signal, what: `file ${a.file} of ${ref.owner}/${ref.repo}`, endpoint: a.endpoint });
    if (res.status === 200) have = 0; // the server sent the whole file (no Range support, or it changed)
    else if (res.status !== 206) throw hubHttpError(res, ref, `file ${a.file} of ${ref.owner}/${ref.repo}`, a.endpoint, 'Authorization' in a.headers);
    else if (Number(/^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1]) !== have) {
      // A range other than the one asked for cannot extend the partial file: start it over.
      await res.body?.cancel().catch(() => {});
      await rm(part, { force: true });
      throw new ModelSourceError('hub_unavailable', ref.text, `The server answered a resumed download of ${ref.text} with another byte range (${res.headers.get('content-range') ?? 'none'}); the partial file was removed — run it again to download from the start.`);
    }
  }
  // A resumed download hashes the bytes already on disk first, so the checksum covers the whole file.
  if (have > 0) for await (const chunk of createReadStream(part, { end: have - 1 })) hashes.update(chunk as Buffer);

  const total = expected.bytes ?? (have + Number(res?.headers.get('content-length') ?? 0));
  let fh: FileHandle | undefined;
  let bytes = have;
  const started = Date.now();
  let lastReport = 0;
  const report = (force: boolean) => {
    const now = Date.now();
    if (!a.onProgress || (!force && now - lastReport < PROGRESS_INTERVAL_MS)) return;
    lastReport = now;
    const seconds = Math.max((now - started) / 1000, 1e-3);
    const bytesPerSecond = (bytes - have) / seconds;
    const etaSeconds = total > 0 && bytesPerSecond > 0 ? Math.max(0, (total - bytes) / bytesPerSecond) : null;
    a.onProgress({ model: ref.text, file: a.file, bytes, total, bytesPerSecond, etaSeconds });
  };
  try {
    fh = await open(part, have > 0 ? 'a' : 'w');
    report(true);
    if (res?.body) {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        hashes.update(chunk);
        await fh.write(chunk);
        bytes += chunk.byteLength;
        report(false);
        if (a.signal?.aborted) throw a.signal.reason;
      }
    }
    await fh.close();
    fh = undefined;
  } catch (e) {
    await fh?.close().catch(() => {});
    if (isDiskFull(e)) {
      await rm(part, { force: true });
      throw diskFull(ref, dirname(part), expected.bytes, e);
    }
    if (a.signal?.aborted) throw abortedError(ref, a.signal);
    throw new ModelSourceError('hub_unavailable', ref.text, `The download of ${ref.text} broke off after ${bytes} of ${total || '?'} bytes (${(e as Error).message}); run it again to resume.`, { cause: e });
  }
  report(true);

  if (expected.bytes !== undefined && bytes < expected.bytes) {
    // The connection ended early: keep the part for a resume, never use it.
    throw new ModelSourceError('hub_unavailable', ref.text, `The download of ${ref.text} ended after ${bytes} of ${expected.bytes} bytes; run it again to resume.`);
  }
  const got = hashes.digests();
  const mismatch =
    expected.bytes !== undefined && bytes !== expected.bytes
      ? `it has ${bytes} bytes where the hub says ${expected.bytes}`
      : expected.sha256 && got.sha256 !== expected.sha256
        ? `its sha256 is ${got.sha256}, the hub's is ${expected.sha256}`
        : expected.gitSha1 && got.gitSha1 && got.gitSha1 !== expected.gitSha1
          ? `its git blob id is ${got.gitSha1}, the hub's is ${expected.gitSha1}`
          : undefined;
  if (mismatch) {
    await rm(part, { force: true });
    throw new ModelSourceError('checksum_mismatch', ref.text, `The download of ${ref.text} (${a.file}) is corrupt: ${mismatch}. The partial file was removed; pull again (if it keeps failing, a proxy or mirror is altering the file).`);
  }
  try {
    await assertLoadableGguf(part, ref.text);
  } catch (e) {
    await rm(part, { force: true });
    throw e;
  }
  await rename(part, a.finalPath);
  return { bytes, sha256: got.sha256 };
}

const LOCK_POLL_MS = 500;
const LOCK_REFRESH_MS = 10_000;
const LOCK_STALE_MS = 60_000;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * REPO_DIR/.nodeai-hub.lock holds the PID of the process downloading into the repository's folder,
 * so two processes (a CLI pull and the server) never write one .part, or the state file, together:
 * the second waits for the first, then finds its file. A lock left by a dead process is taken over.
 */
async function withRepoLock<T>(repoDir: string, ref: HubModelRef, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  const lock = join(repoDir, LOCK_FILE);
  await mkdir(repoDir, { recursive: true });
  for (;;) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = Number(await readFile(lock, 'utf8').catch(() => ''));
      const age = Date.now() - (await stat(lock).then((st) => st.mtimeMs, () => 0));
      // A holder refreshes its lock every LOCK_REFRESH_MS: an old lock is a dead (or reused) PID's.
      if (!Number.isInteger(holder) || holder <= 0 || !isAlive(holder) || age > LOCK_STALE_MS) {
        await rm(lock, { force: true });
        continue;
      }
      if (signal?.aborted) throw abortedError(ref, signal);
      await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
    }
  }
  const refresh = setInterval(() => {
    const now = new Date();
    void utimes(lock, now, now).catch(() => {});
  }, LOCK_REFRESH_MS);
  refresh.unref();
  try {
    return await fn();
  } finally {
    clearInterval(refresh);
    await rm(lock, { force: true });
  }
}

const inFlight = new Map<string, { promise: Promise<HubModelFile>; listeners: Set<ProgressListener> }>();

/**
 * Turns `hf:OWNER/REPO:QUANT` or `hf:OWNER/REPO/FILE.gguf` into a verified local GGUF, downloading
 * it on first use (never twice: a verified file is found without the network, and concurrent
 * calls in this process share one download). Throws {@link ModelSourceError}.
 */
export function resolveHubModel(ref: HubModelRef, options: HubOptions): Promise<HubModelFile> {
  const key = `${options.dataDir}\0${ref.text}`;
  const running = inFlight.get(key);
  if (running) {
    if (options.onProgress) running.listeners.add(options.onProgress);
    return running.promise;
  }
  const listeners = new Set<ProgressListener>(options.onProgress ? [options.onProgress] : []);
  const promise = fetchHubModel(ref, options, (p) => {
    for (const l of listeners) l(p);
  }).finally(() => inFlight.delete(key));
  inFlight.set(key, { promise, listeners });
  return promise;
}

async function fetchHubModel(ref: HubModelRef, options: HubOptions, onProgress: ProgressListener): Promise<HubModelFile> {
  const found = await findDownloadedHubModel(ref, options.dataDir);
  if (found) return found;
  if (options.download === false) {
    throw new ModelSourceError('not_downloaded', ref.text, `${ref.text} is not downloaded yet; run "nodeai models pull ${ref.text}".`);
  }
  const env = options.env ?? process.env;
  const endpoint = hubEndpoint(env);
  const token = await hubToken(env);
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  const signal = options.signal;
  if (signal?.aborted) throw abortedError(ref, signal);

  const manifest = ref.file ? undefined : await fetchManifest(ref, endpoint, headers, signal);
  const file = ref.file ?? manifest!.rfilename;
  if (!/\.gguf$/i.test(file) || file.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new ModelSourceError('hub_unavailable', ref.text, `The hub's manifest for ${ref.text} names ${JSON.stringify(file)}, which is not a .gguf file inside the repository; name the file instead: hf:${ref.owner}/${ref.repo}/FILE.gguf.`);
  }
  const repoDir = hubRepoDir(options.dataDir, ref);
  const tag = ref.quant ?? 'latest';
  return withRepoLock(repoDir, ref, signal, async () => {
    // Another quant tag, the file named directly, or another process may have brought it already.
    const already = await findDownloadedHubModel({ ...ref, file }, options.dataDir);
    if (already) {
      if (!ref.file) await updateState(repoDir, (s) => void (s.tags[tag] = file));
      return already;
    }
    return download(ref, { file, repoDir, tag, endpoint, headers, signal, onProgress, manifest });
  });
}

async function download(
  ref: HubModelRef,
  a: { file: string; repoDir: string; tag: string; endpoint: string; headers: Record<string, string>; signal: AbortSignal | undefined; onProgress: ProgressListener; manifest: ManifestFile | undefined },
): Promise<HubModelFile> {
  const { file, repoDir, tag, endpoint, headers, signal, onProgress, manifest } = a;
  const url = `${endpoint}/${encodeURIComponent(ref.owner)}/${encodeURIComponent(ref.repo)}/resolve/${REVISION}/${file.split('/').map(encodeURIComponent).join('/')}`;
  const head = await headFile(url, ref, endpoint, headers, signal, file);
  const expected: Expected = { ...head, ...(manifest?.size !== undefined ? { bytes: manifest.size } : {}), ...(manifest?.sha256 ? { sha256: manifest.sha256 } : {}) };
  const finalPath = join(repoDir, file);
  const { bytes, sha256 } = await transfer({ ref, url, file, finalPath, expected, headers, endpoint, signal, onProgress });
  await updateState(repoDir, (s) => {
    s.files[file] = { bytes, sha256, commit: expected.commit ?? null, downloaded_at: Date.now() };
    if (!ref.file) s.tags[tag] = file;
  });
  return { path: finalPath, file, bytes, sha256, commit: expected.commit ?? null, downloaded: true };
}

// An Ollama blob is named by the sha256 of its bytes, but a pull cut short, a full disk or a bad
// copy can leave other bytes under that name, which would only fail later (mid-load, or as a
// model that answers nonsense). So the first use of a blob hashes it, and the result is
// remembered in NodeAI's data dir (never in Ollama's store) for that path, size and mtime: a
// multi-gigabyte blob is hashed once, not on every read.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ModelSourceError } from './model-source-errors.ts';

/** What was verified: the blob's path and the size and mtime it had then. */
interface VerifiedBlob {
  path: string;
  bytes: number;
  mtimeMs: number;
}

/** DATA_DIR/models/ollama-verified: one small JSON file per verified blob, named like the blob. */
export function verifiedBlobsDir(dataDir: string): string {
  return join(dataDir, 'models', 'ollama-verified');
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** Hashes in progress in this process: two users of one blob at once wait on the same reading. */
const hashing = new Map<string, Promise<string>>();

function hashOnce(path: string): Promise<string> {
  let pending = hashing.get(path);
  if (!pending) {
    pending = sha256OfFile(path).finally(() => hashing.delete(path));
    hashing.set(path, pending);
  }
  return pending;
}

async function readVerified(path: string): Promise<VerifiedBlob | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as VerifiedBlob;
  } catch {
    return undefined;
  }
}

/**
 * Checks that the blob at `path` hashes to `hex`, unless it was checked before and has not changed
 * since. Throws {@link ModelSourceError} `checksum_mismatch` naming the model and saying to pull it
 * again.
 */
export async function verifyOllamaBlob(blob: { path: string; hex: string }, context: { model: string; pullName: string; dataDir: string }): Promise<void> {
  const now = await stat(blob.path);
  const seen: VerifiedBlob = { path: blob.path, bytes: now.size, mtimeMs: now.mtimeMs };
  const dir = verifiedBlobsDir(context.dataDir);
  const record = join(dir, `sha256-${blob.hex}.json`);
  const before = await readVerified(record);
  if (before && before.path === seen.path && before.bytes === seen.bytes && before.mtimeMs === seen.mtimeMs) return;

  const actual = await hashOnce(blob.path);
  if (actual !== blob.hex) {
    throw new ModelSourceError(
      'checksum_mismatch',
      context.model,
      `${context.model}: Ollama's blob ${blob.path} is damaged: its ${seen.bytes} bytes hash to sha256:${actual.slice(0, 12)}…, not to the sha256:${blob.hex.slice(0, 12)}… it is named by (a pull cut short, or a bad copy). Run "ollama pull ${context.pullName}" again.`,
    );
  }
  await mkdir(dir, { recursive: true });
  // Written whole, then renamed: a reader never sees half a record, and two processes that
  // verified the same blob write the same content.
  const tmp = `${record}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(seen));
  await rename(tmp, record);
}

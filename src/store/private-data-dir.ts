// The data directory holds the database, uploads, secrets, checkpoints and models: only its owner
// may read it. New files and folders are created private by the process's umask (so every layer
// and the trainer's child process write 0600 files and 0700 folders without each saying so); one
// left readable by an older version is tightened when a store opens it.
import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const PRIVATE_UMASK = 0o077;

/**
 * Creates `dataDir` 0700 (or tightens it), tightens what it holds directly (the database and its
 * -wal/-shm files, api-token, secret.key, the files/jobs/models folders), and sets the umask so
 * that everything written from now on is private. Returns the names it had to tighten; empty
 * when all was private already. A no-op on Windows, where modes do not apply.
 */
export function makeDataDirPrivate(dataDir: string): string[] {
  if (process.platform === 'win32') return [];
  try {
    process.umask(PRIVATE_UMASK);
  } catch {
    // A worker thread cannot change the umask; the main thread that opened the store first has.
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const tightened: string[] = [];
  const tighten = (path: string, name: string, mode: number) => {
    const info = lstatSync(path);
    // A link may point anywhere; what it points to is not this directory's to change.
    if (info.isSymbolicLink() || (info.mode & 0o077) === 0) return;
    chmodSync(path, mode);
    tightened.push(name);
  };
  tighten(dataDir, '.', 0o700);
  for (const name of readdirSync(dataDir)) {
    const path = join(dataDir, name);
    tighten(path, name, lstatSync(path).isDirectory() ? 0o700 : 0o600);
  }
  return tightened;
}

/** The one-line notice for what `makeDataDirPrivate` tightened. */
export function privateDirNotice(dataDir: string, tightened: string[]): string {
  const inside = tightened.filter((n) => n !== '.');
  return `made the data directory ${dataDir} private (mode 700${inside.length ? `; 600/700 on ${inside.join(', ')}` : ''}): other users could read it.`;
}

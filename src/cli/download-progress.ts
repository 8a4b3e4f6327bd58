// Download progress on the terminal: a bar that redraws in place on a TTY (bytes, speed, ETA),
// plain lines at most every few seconds otherwise (logs, CI, pipes), so output stays readable.
import type { DownloadProgress } from '../trainer/model-source.ts';

const PLAIN_INTERVAL_MS = 5000;
const BAR_WIDTH = 24;

function size(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e3).toFixed(0)} kB`;
}

function duration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** One line describing the progress: "42% 113.0/268.0 MB 12.3 MB/s ETA 13s". */
export function describeProgress(p: DownloadProgress): string {
  const pct = p.total > 0 ? `${Math.floor((100 * p.bytes) / p.total)}% ` : '';
  return `${pct}${size(p.bytes)}/${p.total > 0 ? size(p.total) : '?'}  ${size(p.bytesPerSecond)}/s  ETA ${duration(p.etaSeconds)}`;
}

/** A progress listener writing to `stream` (stderr by default); call `done()` after the download. */
export function progressPrinter(stream: NodeJS.WriteStream = process.stderr): { onProgress: (p: DownloadProgress) => void; done: () => void } {
  const tty = !!stream.isTTY;
  let last = 0;
  let drawn = false;
  let lastLine = '';
  return {
    onProgress(p) {
      if (tty) {
        const filled = p.total > 0 ? Math.round((BAR_WIDTH * p.bytes) / p.total) : 0;
        const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
        stream.write(`\r${p.file} ${bar} ${describeProgress(p)}\x1b[K`);
        drawn = true;
        return;
      }
      const now = Date.now();
      const finished = p.total > 0 && p.bytes >= p.total;
      if (!finished && now - last < PLAIN_INTERVAL_MS) return;
      const line = `${p.model} (${p.file}): ${describeProgress(p)}`;
      if (line === lastLine) return;
      last = now;
      lastLine = line;
      stream.write(`${line}\n`);
    },
    done() {
      if (tty && drawn) stream.write('\n');
      drawn = false;
    },
  };
}

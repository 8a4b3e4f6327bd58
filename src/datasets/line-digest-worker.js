// Worker thread for `checkDataset` on large JSONL files: hashes every line's raw bytes on a second
// core while the main thread parses and validates. Plain JavaScript so it loads the same under
// tsx, vitest and a global install (no TypeScript loader is inherited by worker threads).
// Protocol: the parent posts Uint8Array chunks in file order, then 'end'; this replies once with
// { lines, hi, lo } — for line lines[i] (1-based), its SHA-1 digest's first 8 bytes — after an
// 'ack' for every chunk.
import { createHash, hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

let lines = new Uint32Array(1 << 16);
let hi = new Uint32Array(1 << 16);
let lo = new Uint32Array(1 << 16);
let count = 0;
let line = 1;
let partial = null; // running hash of a line that spans chunks
let first = true;

function push(digest) {
  if (count === lines.length) {
    const grow = (a) => {
      const b = new Uint32Array(a.length * 2);
      b.set(a);
      return b;
    };
    lines = grow(lines);
    hi = grow(hi);
    lo = grow(lo);
  }
  lines[count] = line;
  hi[count] = digest.readUInt32LE(0);
  lo[count] = digest.readUInt32LE(4);
  count++;
}

parentPort.on('message', (msg) => {
  if (msg === 'end') {
    if (partial) push(partial.digest());
    parentPort.postMessage({ lines: lines.subarray(0, count), hi: hi.subarray(0, count), lo: lo.subarray(0, count) });
    return;
  }
  digestChunk(Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength));
  parentPort.postMessage('ack'); // the parent keeps only a few chunks in flight
});

function digestChunk(buf) {
  if (first) {
    first = false;
    if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
  }
  let start = 0;
  for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10, start)) {
    if (partial) {
      partial.update(buf.subarray(0, nl));
      push(partial.digest());
      partial = null;
    } else if (nl > start) {
      push(hash('sha1', buf.subarray(start, nl), 'buffer'));
    }
    line++;
    start = nl + 1;
  }
  if (start < buf.length) {
    partial ??= createHash('sha1');
    partial.update(buf.subarray(start));
  }
}

import { hash } from 'node:crypto';
import type { ChatMessage } from './types.ts';

/**
 * Remembers examples by a 64-bit digest, not by content: open addressing over typed arrays, 12
 * bytes a slot, so a million examples take ~25 MB whatever their size. Two different examples
 * share a digest with odds of about n²/2⁶⁵ — negligible for a warning.
 */
export class DuplicateFinder {
  private hi = new Uint32Array(1 << 12);
  private lo = new Uint32Array(1 << 12);
  private lines = new Uint32Array(1 << 12); // 0 marks an empty slot; line numbers start at 1
  private size = 0;

  /** Records `key` seen on `line`; returns the line of its first occurrence when seen before. */
  check(key: string, line: number): number | null {
    const d = hash('sha1', key, 'buffer');
    return this.checkDigest(d.readUInt32LE(0), d.readUInt32LE(4), line);
  }

  /** As `check`, with the digest's two halves computed elsewhere (the line-digest worker). */
  checkDigest(h: number, l: number, line: number): number | null {
    if ((this.size + 1) * 2 > this.lines.length) this.grow();
    const mask = this.lines.length - 1;
    let i = l & mask;
    for (;;) {
      const at = this.lines[i];
      if (at === 0) {
        this.hi[i] = h;
        this.lo[i] = l;
        this.lines[i] = line;
        this.size++;
        return null;
      }
      if (this.hi[i] === h && this.lo[i] === l) return at;
      i = (i + 1) & mask;
    }
  }

  private grow(): void {
    const { hi, lo, lines } = this;
    const n = lines.length * 2;
    this.hi = new Uint32Array(n);
    this.lo = new Uint32Array(n);
    this.lines = new Uint32Array(n);
    const mask = n - 1;
    for (let j = 0; j < lines.length; j++) {
      if (lines[j] === 0) continue;
      let i = lo[j] & mask;
      while (this.lines[i] !== 0) i = (i + 1) & mask;
      this.hi[i] = hi[j];
      this.lo[i] = lo[j];
      this.lines[i] = lines[j];
    }
  }
}

/** The text that identifies an example for duplicate detection: roles, contents and tool calls, in order. */
export function exampleKey(messages: ReadonlyArray<ChatMessage>, extra?: unknown): string {
  let key = '';
  for (const m of messages) {
    key += m.role + '\u0000' + (typeof m.content === 'string' ? m.content : JSON.stringify(m.content ?? null));
    if (m.tool_calls) key += JSON.stringify(m.tool_calls);
    key += '\u0001';
  }
  if (extra !== undefined) key += JSON.stringify(extra);
  return key;
}

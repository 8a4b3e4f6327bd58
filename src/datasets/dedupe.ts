import type { ChatMessage } from './types.ts';

// A murmur3-style hash with a second state lane: each 32-bit word of input is mixed once
// (murmur3's k-mix), then folded into two lanes with different rotations and multipliers, so one
// pass gives 64 bits. Hashed in JavaScript because node:crypto's per-call overhead dominated on
// ~300-character examples (SHA-1 was the largest item of a large `data check` profile), and
// because it lets an example be hashed field by field, without concatenating a key string first
// (that string was most of the check's garbage). A cheaper one-multiply-per-lane fold (FxHash
// style) was tried and gave 30-40x the expected 32-bit collisions on near-identical texts. Not
// cryptographic: a duplicate warning needs no resistance to crafted collisions.
const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const B = 0x27d4eb2f;
const SEED_A = 0x9747b28c;
const SEED_B = 0x3c6ef372;
const SEED_C = 0x7f4a7c15;
const SEED_D = 0x6a09e667;

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

// Fields fed to the hash besides strings, so that the sequence of fields reads back one way only.
const STRING_CONTENT = 1;
const JSON_CONTENT = 2;
const TOOL_CALLS = 3;
const MESSAGE_END = 4;
const EXTRA = 5;
const ASCII_TEXT = 6;
const UTF16_TEXT = 7;

const SHORT = 32;
const utf8 = new TextEncoder();
const DEFAULT_SCRATCH = 64 * 1024;
const MAX_KEPT_SCRATCH = 1024 * 1024;

/**
 * Remembers examples by a 64-bit digest, not by content: open addressing over one typed array,
 * 12 bytes a slot (digest and line side by side, one cache line per probe), so a million examples
 * take 24 MB whatever their size. Two different examples share a digest with odds of about
 * n²/2⁶⁵ — negligible for a warning.
 */
export class DuplicateFinder {
  /** [hi, lo, line] per slot; line 0 marks an empty slot (line numbers start at 1). */
  private slots = new Uint32Array(3 << 12);
  private capacity = 1 << 12;
  private size = 0;
  // The running hash: fields rather than a returned object, so hashing allocates nothing.
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;
  private words = 0;
  private scratch = Buffer.alloc(0);
  private scratchWords = new Int32Array(0);

  /**
   * Records an example seen on `line`; returns the line of its first occurrence when seen before.
   * Examples are the same when their roles, contents and tool calls are, in order, and `extra`
   * (tools, or a DPO line's two outputs) serializes the same with JSON.stringify; names, weights
   * and other message keys are not compared.
   */
  checkExample(messages: ReadonlyArray<ChatMessage>, extra: unknown, line: number): number | null {
    this.begin();
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      this.text(m.role);
      const c = m.content;
      if (typeof c === 'string') {
        this.word(STRING_CONTENT);
        this.text(c);
      } else {
        this.word(JSON_CONTENT);
        this.text(JSON.stringify(c ?? null));
      }
      if (m.tool_calls) {
        this.word(TOOL_CALLS);
        this.text(JSON.stringify(m.tool_calls));
      }
      this.word(MESSAGE_END);
    }
    if (extra !== undefined) {
      this.word(EXTRA);
      this.text(JSON.stringify(extra));
    }
    return this.end(line);
  }

  /** As `checkExample`, for an identity already written as one string. */
  check(key: string, line: number): number | null {
    this.begin();
    this.text(key);
    return this.end(line);
  }

  /** As `check`, with the digest's two halves computed elsewhere (the line-digest worker). */
  checkDigest(h: number, l: number, line: number): number | null {
    if ((this.size + 1) * 4 > this.capacity * 3) this.grow();
    const slots = this.slots;
    const mask = this.capacity - 1;
    h >>>= 0;
    l >>>= 0;
    let i = l & mask;
    for (;;) {
      const at = slots[i * 3 + 2];
      if (at === 0) {
        slots[i * 3] = h;
        slots[i * 3 + 1] = l;
        slots[i * 3 + 2] = line;
        this.size++;
        return null;
      }
      if (slots[i * 3] === h && slots[i * 3 + 1] === l) return at;
      i = (i + 1) & mask;
    }
  }

  private begin(): void {
    this.a = SEED_A;
    this.b = SEED_B;
    this.c = SEED_C;
    this.d = SEED_D;
    this.words = 0;
  }

  private end(line: number): number | null {
    const a = fmix(this.a ^ this.words ^ Math.imul(fmix(this.c), 0x2c1b3c6d));
    const b = fmix(this.b ^ Math.imul(this.words, 0x9e3779b1) ^ Math.imul(fmix(this.d), 0x297a2d39));
    return this.checkDigest(a, b, line);
  }

  /** One 32-bit word into both lanes. */
  private word(k: number): void {
    let x = Math.imul(k, C1);
    x = Math.imul((x << 15) | (x >>> 17), C2);
    const a = this.a ^ x;
    this.a = (Math.imul((a << 13) | (a >>> 19), 5) + 0xe6546b64) | 0;
    const b = this.b ^ x;
    this.b = (Math.imul((b << 17) | (b >>> 15), B) + 0x561ccd1b) | 0;
    this.words++;
  }

  /** A string, then its length: ("ab", "c") and ("a", "bc") differ. */
  private text(s: string): void {
    const n = s.length;
    if (n < SHORT) {
      // Roles and short texts: the copy below costs more than it saves.
      let a = this.a;
      let b = this.b;
      let i = 0;
      for (; i + 1 < n; i += 2) {
        const k = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16);
        let x = Math.imul(k, C1);
        x = Math.imul((x << 15) | (x >>> 17), C2);
        a ^= x;
        a = (Math.imul((a << 13) | (a >>> 19), 5) + 0xe6546b64) | 0;
        b ^= x;
        b = (Math.imul((b << 17) | (b >>> 15), B) + 0x561ccd1b) | 0;
      }
      this.a = a;
      this.b = b;
      this.words += i >>> 1;
      // An odd last code unit, offset by one so that it never reads as "no last code unit" (0).
      this.word(i < n ? s.charCodeAt(i) + 1 : 0);
      this.word(n);
      return;
    }
    // Longer texts are copied into a scratch buffer by one native call and read back four bytes
    // a word: far fewer steps than charCodeAt by charCodeAt. ASCII (most text) is copied one byte
    // a character, anything else as UTF-16 code units — both exact, so equal strings and only
    // equal strings give equal words; the tag keeps the two apart.
    if (n * 2 + 4 > this.scratch.length) this.setScratch(Math.max(n * 2 + 4, DEFAULT_SCRATCH));
    const buf = this.scratch;
    // UTF-8 of an ASCII string is one byte a character, and longer for anything else.
    const r = utf8.encodeInto(s, buf);
    const ascii = r.read === n && r.written === n;
    const bytes = ascii ? n : buf.write(s, 0, n * 2, 'utf16le');
    buf[bytes] = 0;
    buf[bytes + 1] = 0;
    buf[bytes + 2] = 0;
    const w = this.scratchWords;
    const nw = (bytes + 3) >>> 2;
    // Odd words go to a second pair of lanes (c, d), folded in at the end: two independent
    // multiply chains keep the CPU busy where one chain waits on each multiply's latency.
    let a = this.a;
    let b = this.b;
    let c = this.c;
    let d = this.d;
    let i = 0;
    for (; i + 1 < nw; i += 2) {
      let x = Math.imul(w[i], C1);
      x = Math.imul((x << 15) | (x >>> 17), C2);
      let y = Math.imul(w[i + 1], C1);
      y = Math.imul((y << 15) | (y >>> 17), C2);
      a ^= x;
      a = (Math.imul((a << 13) | (a >>> 19), 5) + 0xe6546b64) | 0;
      b ^= x;
      b = (Math.imul((b << 17) | (b >>> 15), B) + 0x561ccd1b) | 0;
      c ^= y;
      c = (Math.imul((c << 13) | (c >>> 19), 5) + 0xe6546b64) | 0;
      d ^= y;
      d = (Math.imul((d << 17) | (d >>> 15), B) + 0x561ccd1b) | 0;
    }
    if (i < nw) {
      let x = Math.imul(w[i], C1);
      x = Math.imul((x << 15) | (x >>> 17), C2);
      a ^= x;
      a = (Math.imul((a << 13) | (a >>> 19), 5) + 0xe6546b64) | 0;
      b ^= x;
      b = (Math.imul((b << 17) | (b >>> 15), B) + 0x561ccd1b) | 0;
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
    this.words += nw;
    this.word(ascii ? ASCII_TEXT : UTF16_TEXT);
    this.word(n);
    if (buf.length > MAX_KEPT_SCRATCH) this.setScratch(DEFAULT_SCRATCH);
  }

  private setScratch(bytes: number): void {
    const ab = new ArrayBuffer((bytes + 7) & ~7);
    this.scratch = Buffer.from(ab);
    this.scratchWords = new Int32Array(ab);
  }

  private grow(): void {
    const old = this.slots;
    const oldCapacity = this.capacity;
    this.capacity = oldCapacity * 2;
    this.slots = new Uint32Array(this.capacity * 3);
    const slots = this.slots;
    const mask = this.capacity - 1;
    for (let j = 0; j < oldCapacity; j++) {
      const line = old[j * 3 + 2];
      if (line === 0) continue;
      const l = old[j * 3 + 1];
      let i = l & mask;
      while (slots[i * 3 + 2] !== 0) i = (i + 1) & mask;
      slots[i * 3] = old[j * 3];
      slots[i * 3 + 1] = l;
      slots[i * 3 + 2] = line;
    }
  }
}

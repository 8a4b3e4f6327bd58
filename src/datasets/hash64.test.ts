import { describe, expect, it } from 'vitest';
import { Hash64 } from './hash64.ts';
import { seededRandom } from './split.ts';

// The hash written out again with BigInt, straight from its description in hash64.ts, so the
// assembled WebAssembly is checked against something readable.
const M = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const SEED = 0x2545f4914f6cdd1dn;
const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M;
const round = (acc: bigint, w: bigint) => (rotl((acc + w * P2) & M, 31n) * P1) & M;
const word = (b: Uint8Array, at: number, n = 8) => {
  let x = 0n;
  for (let k = n - 1; k >= 0; k--) x = (x << 8n) | BigInt(b[at + k]);
  return x;
};

function reference(fields: Array<[Uint8Array, number]>): bigint {
  const v = [(SEED + P1 + P2) & M, (SEED + P2) & M, SEED, (SEED - P1) & M];
  for (const [b, tag] of fields) {
    let p = 0;
    for (; p + 32 <= b.length; p += 32) for (let k = 0; k < 4; k++) v[k] = round(v[k], word(b, p + 8 * k));
    for (; p + 8 <= b.length; p += 8) v[0] = round(v[0], word(b, p));
    if (b.length & 7) v[1] = round(v[1], word(b, p, b.length & 7));
    v[2] = round(v[2], (BigInt(b.length) << 32n) | BigInt(tag >>> 0));
  }
  let h = (rotl(v[0], 1n) + rotl(v[1], 7n) + rotl(v[2], 12n) + rotl(v[3], 18n)) & M;
  for (const x of v) h = ((((h ^ round(0n, x)) * P1) & M) + P4) & M;
  h ^= h >> 33n;
  h = (h * P2) & M;
  h ^= h >> 29n;
  h = (h * P3) & M;
  return h ^ (h >> 32n);
}

function digest(h: Hash64, fields: Array<[string, number]>): bigint {
  h.begin();
  for (const [s, tag] of fields) h.text(s, tag);
  h.end();
  return (BigInt(h.hi) << 32n) | BigInt(h.lo);
}

/** The bytes a string is hashed as, and its tag: ASCII one byte a character, else UTF-16 with bit 31 set. */
function bytesOf(s: string, tag: number): [Uint8Array, number] {
  const ascii = [...s].every((c) => c.charCodeAt(0) < 0x80);
  return ascii ? [Buffer.from(s, 'latin1'), tag] : [Buffer.from(s, 'utf16le'), (tag | 0x80000000) >>> 0];
}

describe('Hash64', () => {
  it('equals its BigInt description for every tail length, ASCII or not, over several fields', () => {
    const rand = seededRandom(7);
    const h = new Hash64();
    const alphabet = 'abcdefghij KLMNOP.,\u0000\u007f';
    for (let t = 0; t < 400; t++) {
      const fields: Array<[string, number]> = [];
      for (let f = 0; f < 1 + (t % 4); f++) {
        const n = t < 100 ? t : Math.floor(rand() * 200);
        let s = '';
        for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
        if (t % 5 === 0) s += t % 10 === 0 ? 'é' : '👋';
        fields.push([s, Math.floor(rand() * 2 ** 31)]);
      }
      expect(digest(h, fields)).toBe(reference(fields.map(([s, tag]) => bytesOf(s, tag))));
    }
  });

  it('gives different digests for a different tag, split or order of the same text', () => {
    const h = new Hash64();
    const seen = new Set([
      digest(h, [['hello world', 1]]),
      digest(h, [['hello world', 2]]),
      digest(h, [['hello', 1], [' world', 1]]),
      digest(h, [['hello ', 1], ['world', 1]]),
      digest(h, [[' world', 1], ['hello', 1]]),
      digest(h, [['hello world', 1], ['', 1]]),
      digest(h, [['hello world\u0000', 1]]),
    ]);
    expect(seen.size).toBe(7);
    expect(digest(h, [['hello', 1], [' world', 1]])).toBe(digest(new Hash64(), [['hello', 1], [' world', 1]]));
  });

  it('gives back the memory of a huge text once its digest is taken', () => {
    const h = new Hash64();
    const big = 'x'.repeat(3 << 20);
    const d = digest(h, [[big, 1]]);
    expect(h.memoryBytes).toBeLessThanOrEqual(1 << 20);
    expect(digest(h, [[big, 1]])).toBe(d);
    expect(digest(h, [['small', 1]])).toBe(digest(new Hash64(), [['small', 1]]));
  });
});

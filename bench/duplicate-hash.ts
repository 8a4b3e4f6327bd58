// `node --import tsx bench/duplicate-hash.ts [--examples N]`: the duplicate check's hash, side by
// side in one process — the hand-assembled WebAssembly Hash64 (src/datasets/hash64.ts) against
// the xxhash-wasm package's streaming xxHash64 — over the same fields the data benchmark's
// examples have (a system, user and assistant text each, tagged), three interleaved rounds, CPU
// time. Issue #9 asks to move to the package if `bench:data`'s check stays ≥ 60% of its floor by
// CPU time; the extra CPU per example measured here, times the data benchmark's examples, is
// weighed against the headroom the check has above 60% (BENCHMARKS.md).
import xxhash from 'xxhash-wasm';
import { seededRandom } from '../src/datasets/split.ts';
import { Hash64 } from '../src/datasets/hash64.ts';

const WORDS = 'the a order refund account password shipping delivery invoice please thanks help support reset change update cancel subscription plan billing email address phone number'.split(' ');
const sentence = (rand: () => number, n: number) => Array.from({ length: n }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(' ') + '.';

const args = process.argv.slice(2);
const at = args.indexOf('--examples');
const count = at >= 0 ? Number(args[at + 1]) : 300_000;
const rand = seededRandom(7);
const examples = Array.from({ length: count }, (_, i) => [`You are support agent ${i % 7}.`, sentence(rand, 8 + Math.floor(rand() * 25)), sentence(rand, 30 + Math.floor(rand() * 55))]);
const TAGS = [0x11, 0x21, 0x31];

const { create64 } = await xxhash();
const header = new Uint8Array(8);
const headerView = new DataView(header.buffer);

function withHash64(): number {
  const h = new Hash64();
  let x = 0;
  for (const texts of examples) {
    h.begin();
    for (let i = 0; i < texts.length; i++) h.text(texts[i], TAGS[i]);
    h.end();
    x ^= h.lo;
  }
  return x;
}

function withXxhashWasm(): number {
  let x = 0;
  for (const texts of examples) {
    const h = create64(0x2545f4914f6cdd1dn);
    for (let i = 0; i < texts.length; i++) {
      headerView.setUint32(0, texts[i].length, true);
      headerView.setUint32(4, TAGS[i], true);
      h.update(header).update(texts[i]);
    }
    const d = h.digest();
    x ^= Number(d & 0xffffffffn) ^ Number(d >> 32n);
  }
  return x;
}

function cpuMs(fn: () => number): number {
  const before = process.cpuUsage();
  fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
withHash64();
withXxhashWasm();
const rounds: { hash64: number; xxhash: number }[] = [];
for (let r = 0; r < 3; r++) rounds.push({ hash64: cpuMs(withHash64), xxhash: cpuMs(withXxhashWasm) });
const h = median(rounds.map((r) => r.hash64));
const x = median(rounds.map((r) => r.xxhash));
console.log(`${count.toLocaleString('en-US')} examples, 3 fields each; CPU ms per round:`);
for (const [i, r] of rounds.entries()) console.log(`  round ${i + 1}: Hash64 ${r.hash64.toFixed(0)}  xxhash-wasm ${r.xxhash.toFixed(0)}`);
console.log(`median: Hash64 ${h.toFixed(0)} ms (${((h * 1000) / count).toFixed(3)} µs/example), xxhash-wasm ${x.toFixed(0)} ms (${((x * 1000) / count).toFixed(3)} µs/example); extra ${(((x - h) * 1000) / count).toFixed(3)} µs/example`);

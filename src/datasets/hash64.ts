// A streaming 64-bit hash over a sequence of fields (bytes, a length, a 32-bit tag), computed in
// WebAssembly because it has 64-bit multiplies: xxHash64's round (acc = rotl(acc + w·P2, 31)·P1)
// over four lanes takes two multiplies per 8 bytes, where the same strength from JavaScript's
// 32-bit Math.imul took eight. Measured on the data benchmark's texts: ~25 ms of hashing per
// 300 MB, against ~120 ms for the JavaScript murmur-style hash it replaced; copying the text into
// the module's memory (TextEncoder.encodeInto) now costs more than hashing it.
// The module is assembled below from its instructions rather than shipped as a binary, so what runs
// is what is read here. Not xxHash64 itself (the tail and the field framing differ), and not
// cryptographic: it tells examples apart, it does not resist crafted collisions.
// Kept instead of the xxhash-wasm package (issue #9): side by side in one process
// (`npm run bench:hash`, three interleaved rounds, CPU time, 300k examples of three fields)
// xxhash-wasm's streaming create64/update/digest took 2.9 µs an example against 0.46 µs here —
// a wasm call and a TextEncoder pass per update, and a BigInt digest. On the data benchmark's
// ~1.1M examples that is ~2.7 s more CPU where the check has ~0.4 s of headroom: its CPU ratio to
// the floor would fall from 70% to ~37%, under the 60% target.

const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const SEED = 0x2545f4914f6cdd1dn;

/** Where the digest is written; field bytes start at DATA. */
const OUT = 0;
export const DATA = 16;

// --- a minimal WebAssembly assembler: just the encodings this module uses ---------------------

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

function sleb64(v: bigint): number[] {
  v = BigInt.asIntN(64, v);
  const out: number[] = [];
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && !(b & 0x40)) || (v === -1n && b & 0x40)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'ascii')];

const I32 = 0x7f;
const I64 = 0x7e;
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  localGet: (i: number) => [0x20, ...uleb(i)],
  localSet: (i: number) => [0x21, ...uleb(i)],
  globalGet: (i: number) => [0x23, ...uleb(i)],
  globalSet: (i: number) => [0x24, ...uleb(i)],
  i64Load: (offset: number) => [0x29, 0x00, ...uleb(offset)], // alignment hint 1: tails start anywhere
  i64Store: (offset: number) => [0x37, 0x03, ...uleb(offset)],
  i32Const: (n: number) => [0x41, ...sleb64(BigInt(n))],
  i64Const: (n: bigint) => [0x42, ...sleb64(n)],
  i32Eqz: [0x45],
  i32Add: [0x6a],
  i32And: [0x71],
  i32Shl: [0x74],
  i32LtU: [0x49],
  i64Add: [0x7c],
  i64Sub: [0x7d],
  i64Mul: [0x7e],
  i64Xor: [0x85],
  i64Or: [0x84],
  i64And: [0x83],
  i64Shl: [0x86],
  i64ShrU: [0x88],
  i64Rotl: [0x89],
  i64ExtendI32U: [0xad],
};

// globals 0..3 and locals 4..7 (in field): the four lanes
const LANES = [0, 1, 2, 3];

/** acc = rotl(acc + input·P2, 31)·P1, with `input` an instruction sequence leaving one i64. */
const round = (acc: number[], input: number[]): number[] => [...acc, ...input, ...op.i64Const(P2), ...op.i64Mul, ...op.i64Add, ...op.i64Const(31n), ...op.i64Rotl, ...op.i64Const(P1), ...op.i64Mul];

/** `while (local[i] < local[stop]) { body; local[i] += step }` */
const whileBelow = (i: number, stop: number, step: number, body: number[]): number[] => [
  ...op.block,
  ...op.loop,
  ...op.localGet(i),
  ...op.localGet(stop),
  ...op.i32LtU,
  ...op.i32Eqz,
  ...op.brIf(1),
  ...body,
  ...op.localGet(i),
  ...op.i32Const(step),
  ...op.i32Add,
  ...op.localSet(i),
  ...op.br(0),
  ...op.end,
  ...op.end,
];

/** The lanes live in globals 0..3 between calls: begin() sets them, field() advances, end() merges. */
function buildModule(): Uint8Array {
  const get = op.localGet;
  const set = (i: number, value: number[]) => [...value, ...op.localSet(i)];
  const lane = (k: number) => 4 + k;

  const seeds = [SEED + P1 + P2, SEED + P2, SEED, SEED - P1]; // xxHash64's initial values
  const begin = [...LANES.flatMap((k) => [...op.i64Const(seeds[k]), ...op.globalSet(k)]), ...op.end];

  // field(len, tag) hashes memory[DATA, DATA + len): 32-byte stripes across the four lanes; whole
  // 8-byte words of the tail into lane 0; the last 1–7 bytes, read as one word with the bytes past
  // the end masked off, into lane 1; then (len << 32 | tag) into lane 2. The length tells "ab"+"c"
  // from "a"+"bc", and a masked tail from real zero bytes.
  // locals: 0 len, 1 tag (params), 2 q (cursor), 3 stop, 4..7 the lanes
  const [LEN, TAG, Q, STOP] = [0, 1, 2, 3];
  const field = [
    ...LANES.flatMap((k) => set(lane(k), op.globalGet(k))),
    ...set(Q, op.i32Const(DATA)),
    ...set(STOP, [...get(LEN), ...op.i32Const(~31), ...op.i32And, ...op.i32Const(DATA), ...op.i32Add]),
    ...whileBelow(Q, STOP, 32, LANES.flatMap((k) => set(lane(k), round(get(lane(k)), [...get(Q), ...op.i64Load(8 * k)])))),
    ...set(STOP, [...get(LEN), ...op.i32Const(~7), ...op.i32And, ...op.i32Const(DATA), ...op.i32Add]),
    ...whileBelow(Q, STOP, 8, set(lane(0), round(get(lane(0)), [...get(Q), ...op.i64Load(0)]))),
    ...op.block,
    ...get(LEN),
    ...op.i32Const(7),
    ...op.i32And,
    ...op.i32Eqz,
    ...op.brIf(0),
    ...set(
      lane(1),
      round(get(lane(1)), [
        ...get(Q),
        ...op.i64Load(0),
        // mask = (1 << 8·(len & 7)) − 1
        ...op.i64Const(1n),
        ...get(LEN),
        ...op.i32Const(7),
        ...op.i32And,
        ...op.i32Const(3),
        ...op.i32Shl,
        ...op.i64ExtendI32U,
        ...op.i64Shl,
        ...op.i64Const(1n),
        ...op.i64Sub,
        ...op.i64And,
      ]),
    ),
    ...op.end,
    ...set(lane(2), round(get(lane(2)), [...get(LEN), ...op.i64ExtendI32U, ...op.i64Const(32n), ...op.i64Shl, ...get(TAG), ...op.i64ExtendI32U, ...op.i64Or])),
    ...LANES.flatMap((k) => [...get(lane(k)), ...op.globalSet(k)]),
    ...op.end,
  ];

  // end(): xxHash64's merge and avalanche; the digest goes to memory[OUT] as an i64.
  const H = 0;
  const mergeRound = (k: number) => set(H, [...get(H), ...round(op.i64Const(0n), op.globalGet(k)), ...op.i64Xor, ...op.i64Const(P1), ...op.i64Mul, ...op.i64Const(P4), ...op.i64Add]);
  const shiftXor = (bits: bigint) => set(H, [...get(H), ...get(H), ...op.i64Const(bits), ...op.i64ShrU, ...op.i64Xor]);
  const mulBy = (p: bigint) => set(H, [...get(H), ...op.i64Const(p), ...op.i64Mul]);
  const rotls = [1n, 7n, 12n, 18n];
  const end = [
    ...set(H, [...LANES.flatMap((k) => [...op.globalGet(k), ...op.i64Const(rotls[k]), ...op.i64Rotl]), ...op.i64Add, ...op.i64Add, ...op.i64Add]),
    ...LANES.flatMap(mergeRound),
    ...shiftXor(33n),
    ...mulBy(P2),
    ...shiftXor(29n),
    ...mulBy(P3),
    ...shiftXor(32n),
    ...op.i32Const(OUT),
    ...get(H),
    ...op.i64Store(0),
    ...op.end,
  ];

  const body = (locals: number[][], code: number[]) => {
    const f = [...vec(locals), ...code];
    return [...uleb(f.length), ...f];
  };
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(
      1,
      vec([
        [0x60, ...vec([]), ...vec([])], // () -> ()
        [0x60, ...vec([[I32], [I32]]), ...vec([])], // (i32, i32) -> ()
      ]),
    ),
    ...section(3, vec([[0], [1], [0]])),
    ...section(5, vec([[0x00, ...uleb(1)]])), // memory: one page to start, grown from JavaScript
    ...section(6, vec(LANES.map(() => [I64, 0x01, ...op.i64Const(0n), ...op.end]))),
    ...section(
      7,
      vec([
        [...name('begin'), 0x00, 0],
        [...name('field'), 0x00, 1],
        [...name('end'), 0x00, 2],
        [...name('memory'), 0x02, 0],
      ]),
    ),
    ...section(10, vec([body([], begin), body([[2, I32], [4, I64]], field), body([[1, I64]], end)])),
  ];
  return Uint8Array.from(bytes);
}

// The project's type libraries (ES2023 + node) leave WebAssembly's JavaScript API out; these are
// the parts used here.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface Exports {
  begin(): void;
  field(len: number, tag: number): void;
  end(): void;
  memory: WasmMemory;
}

let compiled: object | undefined;

const PAGE = 65536;
const MAX_KEPT_BYTES = 1 << 20;
const utf8 = new TextEncoder();

/** One hashing state (a WebAssembly instance with its own memory): begin, fields, end. */
export class Hash64 {
  private x!: Exports;
  private bytes!: Uint8Array;
  private buf!: Buffer;
  private out!: Uint32Array;
  /** The digest's halves after `end()`. */
  hi = 0;
  lo = 0;

  constructor() {
    this.instantiate();
  }

  private instantiate(): void {
    compiled ??= new wasm.Module(buildModule());
    this.x = new wasm.Instance(compiled).exports as unknown as Exports;
    this.views();
  }

  begin(): void {
    this.x.begin();
  }

  /**
   * A string as one field, tagged. ASCII text (most text) is hashed one byte a character, anything
   * else as its UTF-16 code units — both exact, so equal strings and only equal strings give equal
   * bytes; bit 31 of the tag keeps the two apart.
   */
  text(s: string, tag: number): void {
    const n = s.length;
    if (n * 2 + 8 > this.bytes.length) this.grow(DATA + n * 2 + 8);
    // UTF-8 of an ASCII string is one byte a character, and longer for anything else.
    const r = utf8.encodeInto(s, this.bytes);
    if (r.read === n && r.written === n) this.x.field(n, tag);
    else this.x.field(this.buf.write(s, 0, n * 2, 'utf16le'), (tag | 0x80000000) >>> 0);
  }

  end(): void {
    this.x.end();
    this.lo = this.out[0];
    this.hi = this.out[1];
    // WebAssembly memory only grows: after a huge text, start over with a small instance rather
    // than keep its size for the rest of the file.
    if (this.x.memory.buffer.byteLength > MAX_KEPT_BYTES) this.instantiate();
  }

  /** Bytes of memory the instance holds now. */
  get memoryBytes(): number {
    return this.x.memory.buffer.byteLength;
  }

  private grow(bytes: number): void {
    const mem = this.x.memory;
    mem.grow(Math.ceil((bytes - mem.buffer.byteLength) / PAGE));
    this.views();
  }

  private views(): void {
    const ab = this.x.memory.buffer;
    this.bytes = new Uint8Array(ab, DATA);
    this.buf = Buffer.from(ab, DATA);
    this.out = new Uint32Array(ab, OUT, 2);
  }
}

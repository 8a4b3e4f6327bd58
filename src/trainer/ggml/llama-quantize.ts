// llama.cpp's own quantizer (`llama_model_quantize` in the libllama shipped inside the pinned
// `@node-llama-cpp/<platform>` package), called through koffi. Test fixtures for quantized bases
// are made with it, so the trainer reads files exactly as llama.cpp writes them — not as NodeAI's
// writer would.
//
// The struct below is llama_model_quantize_params field for field, as include/llama.h declares it
// at the commit node-llama-cpp 3.21.1 ships (release v0.4.0, commit 80fb11ac; see lib.ts): enums
// are C ints, the six bools are packed before the pointers, and max_buf_size closes the struct.
// The defaults come from llama_model_quantize_default_params(), so only the fields set here change.
// A different llama.cpp release can change any of this: re-check when the pin moves.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import { ggmlTensorBytes, ggmlTypeId } from '../gguf.js';
import { TrainerError } from '../train-errors.js';
import { findGgmlLibDir } from './lib.js';

koffi.struct('nodeai_llama_model_quantize_params', {
  nthread: 'int32_t',
  ftype: 'int',
  output_tensor_type: 'int',
  token_embedding_type: 'int',
  allow_requantize: 'bool',
  quantize_output_tensor: 'bool',
  only_copy: 'bool',
  pure: 'bool',
  keep_split: 'bool',
  dry_run: 'bool',
  imatrix: 'void *',
  kv_overrides: 'void *',
  tt_overrides: 'void *',
  prune_layers: 'void *',
  max_buf_size: 'size_t',
});

/** enum llama_ftype values (include/llama.h) for the file types the fixtures use. */
export const LLAMA_FTYPE = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q8_0: 7,
  Q2_K: 10,
  Q4_K_M: 15,
  Q5_K_M: 17,
  Q6_K: 18,
  IQ4_NL: 25,
  BF16: 32,
} as const;
export type LlamaFtypeName = keyof typeof LLAMA_FTYPE;

interface QuantizeParams {
  nthread: number;
  ftype: number;
  pure: boolean;
  [field: string]: unknown;
}

type QuantizeFn = ((inp: string, out: string, params: QuantizeParams) => number) & {
  /** koffi: the same call on a worker thread, so the event loop (progress, signals) keeps running. */
  async: (inp: string, out: string, params: QuantizeParams, done: (err: unknown, status: number) => void) => void;
};

let quantizeFns:
  | {
      defaults: () => QuantizeParams;
      quantize: QuantizeFn;
      logSet: (cb: unknown, userData: null) => void;
      logGet: (cb: unknown[], userData: unknown[]) => void;
      logSetRaw: (cb: unknown, userData: unknown) => void;
    }
  | undefined;

koffi.proto('void nodeai_llama_log_callback(int level, const char *text, void *user_data)');
/** enum ggml_log_level (ggml.h). */
const GGML_LOG_LEVEL_ERROR = 4;
/** The callback handed to llama_log_set, kept here so it is never collected while libllama may call it. */
let logCallback: unknown;

function load() {
  if (quantizeFns) return quantizeFns;
  const dir = findGgmlLibDir();
  // The file name carries the release on Linux (libllama.v0.4.0.so); take whichever is there.
  const file = readdirSync(dir).find((f) => /^(lib)?llama(\.v[\d.]+)?\.(so|dylib|dll)$/.test(f));
  if (!file) throw new TrainerError('GGML_LOAD_FAILED', `No libllama library in ${dir}; reinstall dependencies with \`npm ci\`.`);
  const path = join(dir, file);
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load(path);
  } catch (e) {
    throw new TrainerError('GGML_LOAD_FAILED', `Could not load llama.cpp's library ${path}: ${(e as Error).message}`);
  }
  quantizeFns = {
    defaults: lib.func('nodeai_llama_model_quantize_params llama_model_quantize_default_params()'),
    quantize: lib.func(
      'uint32_t llama_model_quantize(const char *fname_inp, const char *fname_out, const nodeai_llama_model_quantize_params *params)',
    ) as QuantizeFn,
    logSet: lib.func('void llama_log_set(nodeai_llama_log_callback *log_callback, void *user_data)'),
    // The logger in place before a dry run borrows it, as opaque pointers, to be put back after.
    logGet: lib.func('void llama_log_get(_Out_ void **log_callback, _Out_ void **user_data)'),
    logSetRaw: lib.func('void llama_log_set(void *log_callback, void *user_data)'),
  };
  return quantizeFns;
}

/**
 * Sends only llama.cpp's error messages to `write` (default stderr): the quantizer logs a line per
 * tensor, which would bury a terminal's progress bar. libllama has one logger per process, which
 * node-llama-cpp sets for itself: call this only in a process that does not chat (the CLI's export).
 */
export function onlyLlamaErrors(write: (text: string) => void = (t) => process.stderr.write(t)): void {
  const fns = load();
  logCallback ??= koffi.register((level: number, text: string) => {
    if (level >= GGML_LOG_LEVEL_ERROR) write(text);
  }, koffi.pointer('nodeai_llama_log_callback'));
  fns.logSet(logCallback, null);
}

/**
 * Writes `output`, a copy of the GGUF model `input` quantized by llama.cpp to `ftype`. With `pure`
 * every 2-D tensor gets the ftype's base type (no Q6_K head in a Q4_K_M file); a row whose length
 * is not a multiple of the type's block still falls back (Q4_K → Q5_0, Q6_K → Q8_0, …), silently,
 * so callers check the types they got.
 */
export function llamaQuantize(input: string, output: string, ftype: LlamaFtypeName, options: QuantizeOptions = {}): void {
  const fns = load();
  checkStatus(fns.quantize(input, output, quantizeParams(fns, ftype, options)), input, output, ftype);
}

/** One tensor as a dry run of llama.cpp's quantizer plans it. */
export interface PlannedTensor {
  name: string;
  /** ggml order, trailing 1s dropped. */
  shape: number[];
  /** ggml_type_name of the input tensor (`f16`, `f32`, …). */
  fromType: string;
  /** ggml_type_name of the type the quantizer gives it (`q4_K`, `q6_K`, `q8_0`, or fromType when copied). */
  toType: string;
  /** Its data's size in the output, unpadded: ggml_row_size(toType, ne0) × rows. */
  bytes: number;
}

export interface QuantizePlan {
  ftype: LlamaFtypeName;
  /** In the input file's order. */
  tensors: PlannedTensor[];
  /** llama.cpp's own total ("quant size = … MiB"), rounded to 0.01 MiB as it prints it. */
  reportedQuantMiB: number;
}

/** A dry run's per-tensor log line: `[  3/ 273]  blk.0.attn_k.weight - [  576,   192,     1,     1], type =    f16, size =    0.21 MiB ->    0.06 MiB (q4_K)`. */
const PLANNED_TENSOR_LINE = /^\[\s*\d+\/\s*\d+\]\s+(\S+)\s+-\s+\[([\d,\s]+)\],\s+type =\s*(\S+),\s+size =\s*[\d.]+ MiB(?:\s*->\s*[\d.]+ MiB \((\S+)\))?\s*$/;
const QUANT_SIZE_LINE = /quant size\s*=\s*([\d.]+) MiB/;

/**
 * What llama.cpp's quantizer would make of `input` at `ftype`, without quantizing: its dry run
 * (`llama_model_quantize_params.dry_run`) reads only the header and tensor infos, decides each
 * tensor's type exactly as a real run does (the ftype's mix, fallbacks for rows that are not a
 * multiple of the block), and logs each decision; this reads that log. So `input` may be a sparse
 * file whose data was never written (gguf-model.ts writeGgufModelLayout). Unlike
 * {@link llamaQuantize}, `pure` defaults to false: the mix a released file of that ftype has. The
 * process's llama.cpp logger is borrowed for the call and put back after.
 */
export function llamaQuantizeDryRun(input: string, ftype: LlamaFtypeName, options: QuantizeOptions = {}): QuantizePlan {
  const fns = load();
  const params = quantizeParams(fns, ftype, { pure: false, ...options });
  params.dry_run = true;
  let log = '';
  let errors = '';
  const capture = koffi.register((level: number, text: string) => {
    log += text;
    if (level >= GGML_LOG_LEVEL_ERROR) errors += text;
  }, koffi.pointer('nodeai_llama_log_callback'));
  const previous: unknown[] = [null];
  const previousUserData: unknown[] = [null];
  fns.logGet(previous, previousUserData);
  fns.logSet(capture, null);
  let status: number;
  try {
    status = fns.quantize(input, '', params);
  } finally {
    fns.logSetRaw(previous[0], previousUserData[0]);
    koffi.unregister(capture);
  }
  if (status !== 0) throw new TrainerError('GGML_COMPUTE_FAILED', `llama.cpp's quantizer could not plan ${input} as ${ftype}: ${errors.trim() || `status ${status}`}`);
  return parseDryRunLog(log, input, ftype);
}

function parseDryRunLog(log: string, input: string, ftype: LlamaFtypeName): QuantizePlan {
  const tensors: PlannedTensor[] = [];
  let reportedQuantMiB: number | undefined;
  for (const line of log.split('\n')) {
    const m = PLANNED_TENSOR_LINE.exec(line.trim());
    if (m) {
      const [, name, dims, fromType, toType = fromType] = m;
      const ne = dims.split(',').map((d) => Number(d.trim()));
      while (ne.length > 1 && ne[ne.length - 1] === 1) ne.pop();
      const typeId = ggmlTypeId(toType);
      const bytes = typeId === undefined ? Number.NaN : ggmlTensorBytes(typeId, ne);
      if (!Number.isInteger(bytes)) throw new TrainerError('GGML_COMPUTE_FAILED', `llama.cpp's quantizer planned type ${toType} for ${name} [${ne}] in ${input}, which NodeAI cannot size; update GGML_TYPES in gguf.ts.`);
      tensors.push({ name, shape: ne, fromType, toType, bytes });
      continue;
    }
    const q = QUANT_SIZE_LINE.exec(line);
    if (q) reportedQuantMiB = Number(q[1]);
  }
  if (tensors.length === 0 || reportedQuantMiB === undefined) {
    throw new TrainerError('GGML_COMPUTE_FAILED', `llama.cpp's quantizer dry run of ${input} (${ftype}) logged no tensor plan; its log format may have changed with the llama.cpp release. Log began: ${JSON.stringify(log.slice(0, 300))}`);
  }
  // The per-tensor sizes must add up to llama.cpp's own total (printed to 0.01 MiB), or this
  // reading of its log has gone wrong.
  const totalMiB = tensors.reduce((a, t) => a + t.bytes, 0) / 2 ** 20;
  if (Math.abs(totalMiB - reportedQuantMiB) > 0.006) {
    throw new TrainerError('GGML_COMPUTE_FAILED', `the dry run's tensors of ${input} (${ftype}) add up to ${totalMiB.toFixed(4)} MiB but llama.cpp reports ${reportedQuantMiB} MiB`);
  }
  return { ftype, tensors, reportedQuantMiB };
}

export interface QuantizeOptions {
  /** Every 2-D tensor gets the ftype's base type (default true); false gives llama.cpp's usual mix (Q6_K output head in Q4_K_M …). */
  pure?: boolean;
  threads?: number;
  /** Let already-quantized tensors be dequantized and quantized again (default false, as llama.cpp). */
  allowRequantize?: boolean;
}

/** {@link llamaQuantize} on a worker thread: the event loop keeps running (progress, Ctrl-C) while it works. */
export function llamaQuantizeAsync(input: string, output: string, ftype: LlamaFtypeName, options: QuantizeOptions = {}): Promise<void> {
  const fns = load();
  const params = quantizeParams(fns, ftype, options);
  return new Promise((resolve, reject) => {
    fns.quantize.async(input, output, params, (err, status) => {
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else {
        try {
          checkStatus(status, input, output, ftype);
          resolve();
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      }
    });
  });
}

function quantizeParams(fns: NonNullable<typeof quantizeFns>, ftype: LlamaFtypeName, options: QuantizeOptions): QuantizeParams {
  const params = fns.defaults();
  params.ftype = LLAMA_FTYPE[ftype];
  params.pure = options.pure ?? true;
  params.nthread = options.threads ?? 1;
  params.allow_requantize = options.allowRequantize ?? false;
  return params;
}

function checkStatus(status: number, input: string, output: string, ftype: LlamaFtypeName): void {
  if (status !== 0) throw new TrainerError('GGML_COMPUTE_FAILED', `llama_model_quantize(${input} → ${output}, ${ftype}) failed with status ${status}`);
}

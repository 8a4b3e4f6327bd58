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

let quantizeFns: { defaults: () => QuantizeParams; quantize: QuantizeFn } | undefined;

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
  };
  return quantizeFns;
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

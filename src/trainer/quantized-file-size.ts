// The size of the GGUF file llama.cpp's quantizer would write, without writing it: the catalogue's
// per-quant file sizes where the hub gave none (bench/catalog-sizes.ts).
//
// llama_model_quantize copies the input's metadata, sets general.quantization_version and
// general.file_type, gives each tensor the type its ftype's rules pick, and pads each tensor's data
// to GGUF_DEFAULT_ALIGNMENT (src/llama-quant.cpp at the pinned commit). Its dry run says which type
// each tensor gets; the header is then NodeAI's GGUF encoder's, and the data each tensor's
// ggml_row_size × rows, so the figure is the output file's size to the byte (quantized-file-size.test.ts
// checks it against a real run).
import { LLAMA_FTYPE, llamaQuantizeDryRun, type LlamaFtypeName, type QuantizeOptions, type QuantizePlan } from './ggml/llama-quantize.ts';
import { gguf, ggmlTypeId, ggufFileSize, readGgufHeader, type GgufTensorLayout } from './gguf.ts';

/** GGML_QNT_VERSION (ggml.h), what the quantizer writes to general.quantization_version. */
const GGML_QNT_VERSION = 2;

export interface QuantizedFileSize {
  /** The output file's size in bytes. */
  bytes: number;
  /** Of which header (metadata and tensor infos, padded). */
  headerBytes: number;
  plan: QuantizePlan;
}

/** What llama_model_quantize(input, …, ftype) would write, in bytes, from its dry run; `input` may be a sparse layout file. */
export async function quantizedFileSize(input: string, ftype: LlamaFtypeName, options: QuantizeOptions = {}): Promise<QuantizedFileSize> {
  const header = await readGgufHeader(input);
  const plan = llamaQuantizeDryRun(input, ftype, options);
  const metadata = new Map(header.metadata);
  metadata.set('general.quantization_version', gguf.u32(GGML_QNT_VERSION));
  metadata.set('general.file_type', gguf.u32(LLAMA_FTYPE[ftype]));
  const tensors: GgufTensorLayout[] = plan.tensors.map((t) => ({ name: t.name, shape: t.shape, ggmlType: ggmlTypeId(t.toType)! }));
  const size = ggufFileSize(metadata, tensors);
  return { bytes: size.totalBytes, headerBytes: size.headerBytes, plan };
}

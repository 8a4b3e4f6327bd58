// Will the pinned llama.cpp (inside node-llama-cpp 3.21.1) load this file? Checked from the GGUF
// header before a downloaded file is kept or an Ollama blob is used, so the user hears the reason
// ("architecture 'mllama' is unknown to llama.cpp") instead of a terse load failure later.
import { GgufError, metaString, readGgufHeader, type GgufHeader } from './gguf.ts';
import { ModelSourceError } from './model-source-errors.ts';

let knownArchitectures: Promise<Set<string>> | undefined;

/**
 * `general.architecture` values the pinned llama.cpp builds graphs for: node-llama-cpp's
 * GgufArchitectureType mirrors llama.cpp's LLM_ARCH_NAMES of the release it ships.
 */
export function llamaCppArchitectures(): Promise<Set<string>> {
  // A `const enum` in the typings, but a real object at run time.
  knownArchitectures ??= import('node-llama-cpp').then((m) => new Set(Object.values((m as unknown as { GgufArchitectureType: Record<string, string> }).GgufArchitectureType)));
  return knownArchitectures;
}

/**
 * Reads the header of `path` and throws {@link ModelSourceError} unless llama.cpp can load it as a
 * model: `not_gguf` for a file that is not a (complete) GGUF, `unsupported_model` for an adapter,
 * an architecture llama.cpp does not know, or a tensor type its ggml has dropped or never had.
 */
export async function assertLoadableGguf(path: string, model: string): Promise<GgufHeader> {
  let header: GgufHeader;
  try {
    header = await readGgufHeader(path);
  } catch (e) {
    if (!(e instanceof GgufError)) throw e;
    const what = e.code === 'GGUF_UNSUPPORTED_VERSION' ? 'unsupported_model' : 'not_gguf';
    throw new ModelSourceError(what, model, `${model} is not a usable GGUF model: ${e.message}. Check that the reference names a .gguf model file.`, { cause: e });
  }
  const architecture = metaString(header, 'general.architecture');
  if (metaString(header, 'general.type') === 'adapter') {
    throw new ModelSourceError('unsupported_model', model, `${model} is a LoRA adapter, not a model; use its base model and pass the adapter separately.`);
  }
  if (!architecture) {
    throw new ModelSourceError('unsupported_model', model, `${model} has no general.architecture in its GGUF header, so llama.cpp cannot load it.`);
  }
  if (!(await llamaCppArchitectures()).has(architecture)) {
    throw new ModelSourceError(
      'unsupported_model',
      model,
      `${model} has architecture '${architecture}', which the llama.cpp bundled with node-llama-cpp 3.21.1 cannot load (Ollama's own engine runs some such files). Use a GGUF of the model converted by llama.cpp, e.g. from the Hugging Face hub (hf:OWNER/REPO:QUANT).`,
    );
  }
  const unknown = header.tensors.find((t) => !Number.isFinite(t.byteLength));
  if (unknown) {
    throw new ModelSourceError(
      'unsupported_model',
      model,
      `${model}: tensor '${unknown.name}' has ${unknown.typeName}, a type the bundled llama.cpp cannot read (removed or never supported). Use a file quantized as Q4_K_M, Q8_0, F16 or another current type.`,
    );
  }
  return header;
}

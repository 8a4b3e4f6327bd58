// `ollama:NAME[:TAG]`: a model the user already pulled with Ollama, read in place. Ollama keeps
// manifests/registry.ollama.ai/NAMESPACE/NAME/TAG (an OCI-style JSON manifest whose layer of media
// type application/vnd.ollama.image.model is the GGUF) and the layers as blobs/sha256-HEX, under
// OLLAMA_MODELS, else ~/.ollama/models, or /usr/share/ollama/.ollama/models for the Linux service.
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { assertLoadableGguf } from './gguf-loadable.ts';
import type { OllamaModelRef } from './model-ref.ts';
import { ModelSourceError } from './model-source-errors.ts';
import { verifyOllamaBlob } from './ollama-blob-check.ts';

const REGISTRY_HOST = 'registry.ollama.ai';
const MODEL_MEDIA_TYPE = 'application/vnd.ollama.image.model';

/** Where Ollama stores may be, in the order they are searched. */
export function ollamaModelDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.OLLAMA_MODELS) return [env.OLLAMA_MODELS];
  return [join(env.HOME || homedir(), '.ollama', 'models'), '/usr/share/ollama/.ollama/models'];
}

export interface OllamaModelFile {
  path: string;
  /** `sha256:HEX` of the blob. */
  digest: string;
  bytes: number;
  /** The store the model was found in. */
  store: string;
}

interface OllamaManifest {
  layers?: { mediaType?: string; digest?: string; size?: number }[];
}

async function readManifest(path: string): Promise<OllamaManifest | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as OllamaManifest;
  } catch (e) {
    throw new ModelSourceError('ollama_not_found', path, `Ollama manifest ${path} is not valid JSON (${(e as Error).message}); run "ollama pull" for the model again.`);
  }
}

function pullNameOf(ref: OllamaModelRef): string {
  return `${ref.namespace === 'library' ? '' : `${ref.namespace}/`}${ref.name}:${ref.tag}`;
}

/**
 * The GGUF of an Ollama model, to use: found ({@link findOllamaModel}), its bytes checked against
 * the sha256 the blob is named by (once per blob; remembered under `dataDir`), and checked to be
 * loadable by the pinned llama.cpp. Throws {@link ModelSourceError}: `ollama_not_found` (with the
 * `ollama pull` command to run), `checksum_mismatch` for a damaged blob, `not_gguf` /
 * `unsupported_model` for a blob llama.cpp cannot use.
 */
export async function resolveOllamaModel(ref: OllamaModelRef, options: { dataDir: string; env?: NodeJS.ProcessEnv }): Promise<OllamaModelFile> {
  const found = await findOllamaModel(ref, options);
  await verifyOllamaBlob({ path: found.path, hex: found.digest.slice('sha256:'.length) }, { model: ref.text, pullName: pullNameOf(ref), dataDir: options.dataDir });
  await assertLoadableGguf(found.path, ref.text);
  return found;
}

/** Finds the blob of an Ollama model and checks its size against the manifest, without reading it. */
async function findOllamaModel(ref: OllamaModelRef, options: { env?: NodeJS.ProcessEnv } = {}): Promise<OllamaModelFile> {
  const dirs = ollamaModelDirs(options.env);
  const pullName = pullNameOf(ref);
  for (const store of dirs) {
    const manifestPath = join(store, 'manifests', REGISTRY_HOST, ref.namespace, ref.name, ref.tag);
    const manifest = await readManifest(manifestPath);
    if (!manifest) continue;
    const layer = manifest.layers?.find((l) => l.mediaType === MODEL_MEDIA_TYPE);
    const hex = /^sha256:([0-9a-f]{64})$/.exec(layer?.digest ?? '')?.[1];
    if (!layer || !hex) {
      throw new ModelSourceError('unsupported_model', ref.text, `${ref.text}: Ollama's manifest ${manifestPath} has no model layer (${MODEL_MEDIA_TYPE}) with a sha256 digest, so there is no GGUF to read.`);
    }
    const path = join(store, 'blobs', `sha256-${hex}`);
    const size = await stat(path).then((s) => s.size, () => undefined);
    if (size === undefined) {
      throw new ModelSourceError('ollama_not_found', ref.text, `${ref.text}: Ollama's blob ${path} is missing (an interrupted or pruned pull); run "ollama pull ${pullName}" again.`);
    }
    if (typeof layer.size === 'number' && layer.size !== size) {
      throw new ModelSourceError('checksum_mismatch', ref.text, `${ref.text}: Ollama's blob ${path} has ${size} bytes but its manifest says ${layer.size}; run "ollama pull ${pullName}" again.`);
    }
    return { path, digest: `sha256:${hex}`, bytes: size, store };
  }
  throw new ModelSourceError(
    'ollama_not_found',
    ref.text,
    `${ref.text} is not in Ollama's store (looked in ${dirs.join(', ')}). Pull it first with "ollama pull ${pullName}", or set OLLAMA_MODELS to the folder Ollama keeps its models in.`,
  );
}

// One parser for every place a model is named (Fine-Tune base, `nodeai finetune --base`, the jobs
// API's `model`, the Chat node's model, `nodeai chat --model`, `nodeai models pull`): the text is
// read once, at the edge, into a typed ModelRef; everything after works on that value.
import { isGgufPath } from './gguf.ts';
import { ModelSourceError } from './model-source-errors.ts';
import { NODEAI_TINY } from './tiny-model.ts';

/** The built-in byte-level model. */
export interface BuiltinModelRef {
  kind: 'builtin';
  name: typeof NODEAI_TINY;
  text: string;
}

/** A GGUF file on this machine, as given (relative paths are the caller's to resolve). */
export interface PathModelRef {
  kind: 'path';
  path: string;
  text: string;
}

/**
 * A GGUF on the Hugging Face hub: `hf:OWNER/REPO:QUANT` (the hub picks the file for that quant tag,
 * as llama.cpp's `-hf` does; no tag means the hub's default) or `hf:OWNER/REPO/PATH/FILE.gguf`.
 */
export interface HubModelRef {
  kind: 'hf';
  owner: string;
  repo: string;
  /** Upper-case quant tag (`Q4_K_M`); undefined when a file is named or no tag was given. */
  quant?: string;
  /** Path of the file inside the repository, when one is named. */
  file?: string;
  /** The canonical text: `hf:OWNER/REPO:QUANT`, `hf:OWNER/REPO` or `hf:OWNER/REPO/FILE.gguf`. */
  text: string;
}

/** A model pulled with Ollama, read in place from its store: `ollama:NAME[:TAG]`, NAME may be `NAMESPACE/NAME`. */
export interface OllamaModelRef {
  kind: 'ollama';
  /** `library` for official models. */
  namespace: string;
  name: string;
  /** Default `latest`. */
  tag: string;
  /** Canonical `ollama:NAME:TAG` (namespace shown only when not `library`). */
  text: string;
}

/** Any other name: a fine-tuned model in the registry (`ft:…` or a chosen name), or a catalogue ID. */
export interface NamedModelRef {
  kind: 'name';
  name: string;
  text: string;
}

export type ModelRef = BuiltinModelRef | PathModelRef | HubModelRef | OllamaModelRef | NamedModelRef;

/** A reference that names a file to fetch or read in place, rather than something this app holds. */
export type RemoteModelRef = HubModelRef | OllamaModelRef;

export const HF_PREFIX = 'hf:';
export const OLLAMA_PREFIX = 'ollama:';

// The hub's own rule for user, organization and repository names (huggingface_hub validate_repo_id).
const HUB_NAME = /^[A-Za-z0-9][\w.-]{0,95}$/;
const QUANT_TAG = /^[A-Za-z0-9][\w.-]{0,63}$/;
// Ollama model names and tags (ollama/types/model/name.go: letters, digits, _ . - ; tags up to 80).
const OLLAMA_PART = /^[A-Za-z0-9][\w.-]{0,79}$/;

const HF_FORMS = '"hf:OWNER/REPO:QUANT" (e.g. hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M) or "hf:OWNER/REPO/FILE.gguf"';

function invalid(text: string, why: string): ModelSourceError {
  return new ModelSourceError('invalid_model_ref', text, `Model ${JSON.stringify(text.slice(0, 200))}: ${why}`);
}

/**
 * Reads a model reference. Throws {@link ModelSourceError} `invalid_model_ref` when the text starts
 * like an hf:/ollama: reference but is malformed, or is empty.
 */
export function parseModelRef(input: string): ModelRef {
  const text = input.trim();
  if (text === '') throw invalid(text, 'the model name is empty; use "nodeai-tiny", a .gguf path, ' + HF_FORMS + ' or "ollama:NAME[:TAG]".');
  const lower = text.toLowerCase();
  if (lower.startsWith(HF_PREFIX)) return parseHub(text, text.slice(HF_PREFIX.length).replace(/^\/\//, ''));
  if (lower.startsWith(OLLAMA_PREFIX)) return parseOllama(text, text.slice(OLLAMA_PREFIX.length));
  if (text === NODEAI_TINY || text === 'tiny') return { kind: 'builtin', name: NODEAI_TINY, text: NODEAI_TINY };
  if (/^https?:\/\//i.test(text)) {
    throw invalid(text, `URLs are not accepted as models; for a file on the Hugging Face hub use ${HF_FORMS}.`);
  }
  if (isGgufPath(text)) return { kind: 'path', path: text, text };
  return { kind: 'name', name: text, text };
}

function parseHub(text: string, body: string): HubModelRef {
  const [owner = '', repoAndTag = '', ...fileParts] = body.split('/');
  if (fileParts.length > 0) {
    const file = fileParts.join('/');
    if (!HUB_NAME.test(owner) || !HUB_NAME.test(repoAndTag)) throw invalid(text, `expected ${HF_FORMS}.`);
    if (!isGgufPath(file)) throw invalid(text, `"${file}" is not a .gguf file; name a GGUF file in the repository, or use a quant tag: ${HF_FORMS}.`);
    if (fileParts.some((p) => p === '' || p === '.' || p === '..')) throw invalid(text, `the file path "${file}" has an empty, "." or ".." part.`);
    return { kind: 'hf', owner, repo: repoAndTag, file, text: `${HF_PREFIX}${owner}/${repoAndTag}/${file}` };
  }
  const colon = repoAndTag.indexOf(':');
  const repo = colon < 0 ? repoAndTag : repoAndTag.slice(0, colon);
  const tag = colon < 0 ? '' : repoAndTag.slice(colon + 1);
  if (!HUB_NAME.test(owner) || !HUB_NAME.test(repo)) throw invalid(text, `expected ${HF_FORMS}.`);
  if (colon >= 0 && !QUANT_TAG.test(tag)) throw invalid(text, `the quant tag after ":" is empty or malformed; use one like Q4_K_M, Q8_0 or F16.`);
  const quant = tag === '' || tag.toLowerCase() === 'latest' ? undefined : tag.toUpperCase();
  return { kind: 'hf', owner, repo, ...(quant ? { quant } : {}), text: `${HF_PREFIX}${owner}/${repo}${quant ? `:${quant}` : ''}` };
}

function parseOllama(text: string, body: string): OllamaModelRef {
  const colon = body.lastIndexOf(':');
  const nameText = colon < 0 ? body : body.slice(0, colon);
  const tag = colon < 0 ? 'latest' : body.slice(colon + 1);
  const parts = nameText.split('/');
  if (parts.length > 2 || !parts.every((p) => OLLAMA_PART.test(p)) || !OLLAMA_PART.test(tag)) {
    throw invalid(text, 'expected "ollama:NAME" or "ollama:NAME:TAG" as "ollama list" shows it (e.g. ollama:qwen2.5:0.5b).');
  }
  const namespace = parts.length === 2 ? parts[0]! : 'library';
  const name = parts[parts.length - 1]!;
  return { kind: 'ollama', namespace, name, tag, text: `${OLLAMA_PREFIX}${namespace === 'library' ? '' : `${namespace}/`}${name}:${tag}` };
}

export function isRemoteModelRef(ref: ModelRef): ref is RemoteModelRef {
  return ref.kind === 'hf' || ref.kind === 'ollama';
}

/** True when the text is an hf: or ollama: reference (well-formed or not). */
export function looksLikeRemoteModelRef(text: string): boolean {
  const lower = text.trim().toLowerCase();
  return lower.startsWith(HF_PREFIX) || lower.startsWith(OLLAMA_PREFIX);
}

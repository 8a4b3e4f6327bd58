// A fine-tuned model for use elsewhere: a GGUF for llama.cpp, LM Studio's folder layout, or an
// Ollama folder with a Modelfile. The merged model (a LoRA already merged into its base by the
// training job, training-process.ts) is converted by llama.cpp's own quantizer to F16, Q8_0 or
// Q4_K_M, which copies every metadata key: tokenizer, chat template and end-of-turn tokens go
// over unchanged. The adapter form writes the LoRA adapter GGUF next to a reference to its base.
import { copyFile, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { llamaQuantizeAsync, type LlamaFtypeName } from './ggml/llama-quantize.ts';
import { GgufError, ggmlTensorBytes, metaString, readGgufHeader } from './gguf.ts';
import { TRAINED_SYSTEM_PROMPT_KEY } from './gguf-model.ts';
import { NodeAIError, type HttpStatus } from '../nodeai-error.ts';
import { ollamaTemplateFor } from './ollama-template.ts';

export const EXPORT_TARGETS = ['gguf', 'ollama', 'lmstudio'] as const;
export type ExportTarget = (typeof EXPORT_TARGETS)[number];
export const EXPORT_QUANTS = ['f16', 'q8_0', 'q4_k_m'] as const;
export type ExportQuant = (typeof EXPORT_QUANTS)[number];
/** Q8_0: near-lossless at half of F16's size, and what the catalogue's bases mostly are. */
export const DEFAULT_EXPORT_QUANT: ExportQuant = 'q8_0';

const FTYPES: Record<ExportQuant, LlamaFtypeName> = { f16: 'F16', q8_0: 'Q8_0', q4_k_m: 'Q4_K_M' };
/** Bytes per weight of each export type's 2-D tensors, for the progress estimate (Q4_K_M: its usual Q4_K/Q6_K mix). */
const BYTES_PER_WEIGHT: Record<ExportQuant, number> = { f16: 2, q8_0: 34 / 32, q4_k_m: 0.6 };

export class ModelExportError extends NodeAIError {
  override readonly name = 'ModelExportError';
  constructor(message: string, status: HttpStatus = 400) {
    super('export_failed', message, { status });
  }
}

/** Where the base of an adapter export comes from, for a Modelfile's FROM and llama-server's -m. */
export interface ExportBase {
  /** The registry's base-model reference (`hf:OWNER/REPO:QUANT`, `ollama:NAME:TAG`, a path, nodeai-tiny). */
  ref: string;
  /** The base's GGUF on this machine, when there is one. */
  path?: string;
  /** Ollama's name for it (`hf.co/OWNER/REPO:QUANT`, `NAME:TAG`), when Ollama can fetch it by name. */
  ollamaName?: string;
}

export interface ExportRequest {
  /** The model's registered ID or name; file and folder names are made from it. */
  name: string;
  to: ExportTarget;
  quant: ExportQuant;
  /** Target path: the .gguf file or a folder (gguf), LM Studio's models folder (lmstudio), the folder to write (ollama). */
  out: string;
  /** The merged model GGUF (the training job's model file). */
  modelPath: string;
  /** Export base + LoRA adapter instead of the merged model (Ollama and llama.cpp only). */
  adapter?: { path: string; base: ExportBase };
  threads?: number;
  onProgress?: (p: ExportProgress) => void;
}

export interface ExportProgress {
  phase: 'quantize' | 'copy';
  /** Bytes written so far and the expected total (an estimate while quantizing). */
  bytes: number;
  totalBytes: number;
}

export interface ExportResult {
  to: ExportTarget;
  quant: ExportQuant | null;
  /** The model GGUF written (the adapter's, in the adapter form). */
  gguf: string;
  modelfile?: string;
  /** Every file written. */
  files: string[];
  /** The command line that runs the export: llama-server for gguf and lmstudio, `ollama create` for ollama. */
  command: string[];
  /** What the user should know: a template left out, a base to fetch first. */
  notes: string[];
}

/** A file-system-safe stem of a model ID: `ft:nodeai-tiny:bot:1a2b3c4d` → `nodeai-tiny-bot-1a2b3c4d`. */
export function exportStem(name: string): string {
  return name.replace(/^ft:/, '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/-{2,}/g, '-').replace(/^[-.]+|[-.]+$/g, '') || 'model';
}

/** Ollama's model name for a stem: lower case, as `ollama create` wants it. */
export function ollamaModelName(name: string): string {
  return exportStem(name).toLowerCase();
}

/** Quotes a path or argument for a POSIX shell when it needs it. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export async function exportModel(req: ExportRequest): Promise<ExportResult> {
  if (req.adapter && req.to === 'lmstudio') {
    throw new ModelExportError('LM Studio loads no LoRA adapters; export the merged model (leave out --adapter).');
  }
  const stem = exportStem(req.name);
  const quantTag = FTYPES[req.quant];
  if (req.to === 'ollama') return exportOllama(req, stem);
  if (req.adapter) {
    const out = ggufTarget(req.out, `${stem}.lora.gguf`);
    await copyWithProgress(req.adapter.path, out, req.onProgress);
    const base = req.adapter.base.path;
    const notes = base ? [] : [`The base ${req.adapter.base.ref} is not on this machine: download it and pass it to llama-server's -m.`];
    return {
      to: req.to,
      quant: null,
      gguf: out,
      files: [out],
      command: ['llama-server', '-m', base ?? '<BASE.gguf>', '--lora', out, '--jinja'],
      notes,
    };
  }
  const file = `${stem}-${quantTag}.gguf`;
  const out = req.to === 'lmstudio' ? join(req.out, 'nodeai', stem, file) : ggufTarget(req.out, file);
  await quantizeTo(req, out);
  return { to: req.to, quant: req.quant, gguf: out, files: [out], command: ['llama-server', '-m', out, '--jinja'], notes: [] };
}

/** `out` itself when it names a .gguf file, else `file` inside the folder `out`. */
function ggufTarget(out: string, file: string): string {
  return /\.gguf$/i.test(out) ? resolve(out) : resolve(out, file);
}

async function exportOllama(req: ExportRequest, stem: string): Promise<ExportResult> {
  const dir = resolve(req.out);
  const files: string[] = [];
  const notes: string[] = [];
  const header = await readGgufHeader(req.modelPath);
  let from: string;
  let adapterLine: string | undefined;
  if (req.adapter) {
    const adapterFile = join(dir, 'adapter.gguf');
    await copyWithProgress(req.adapter.path, adapterFile, req.onProgress);
    files.push(adapterFile);
    adapterLine = 'ADAPTER ./adapter.gguf';
    const base = req.adapter.base;
    if (base.ollamaName) from = base.ollamaName;
    else if (base.path) from = base.path;
    else throw new ModelExportError(`The base ${base.ref} is neither on this machine nor known to Ollama by name; export the merged model instead (leave out --adapter).`);
    notes.push('Recent Ollama versions refuse some LoRA adapter files; if `ollama create` fails on the ADAPTER line, export the merged model instead (leave out --adapter).');
  } else {
    const gguf = join(dir, 'model.gguf');
    await quantizeTo(req, gguf);
    files.push(gguf);
    from = './model.gguf';
  }
  const chatTemplate = metaString(header, 'tokenizer.chat_template');
  const template = ollamaTemplateFor(chatTemplate);
  if (template.family === null) notes.push(`No TEMPLATE in the Modelfile: ${template.note} Ollama will use the template it detects in the GGUF, which may differ from training.`);
  const text = ollamaModelfile({
    from,
    adapter: adapterLine,
    template: template.family === null ? undefined : template,
    system: metaString(header, TRAINED_SYSTEM_PROMPT_KEY),
    notes,
  });
  const modelfile = join(dir, 'Modelfile');
  await mkdir(dir, { recursive: true });
  await writeFile(modelfile, text);
  files.push(modelfile);
  return {
    to: 'ollama',
    quant: req.adapter ? null : req.quant,
    gguf: files[0],
    modelfile,
    files,
    command: ['ollama', 'create', ollamaModelName(stem), '-f', modelfile],
    notes,
  };
}

export interface ModelfileParts {
  /** FROM: `./model.gguf`, a base's path, or a name Ollama pulls (`hf.co/OWNER/REPO:QUANT`). */
  from: string;
  /** The whole ADAPTER line, for the adapter form. */
  adapter?: string;
  template?: { family: string; template: string; stop: string[] };
  system?: string;
  /** Gets a note for each part that cannot be written in a Modelfile. */
  notes: string[];
}

/** Ollama's Modelfile (docs/modelfile.md): FROM, ADAPTER, TEMPLATE, a stop PARAMETER per end-of-turn token, SYSTEM. */
export function ollamaModelfile(p: ModelfileParts): string {
  const lines = [`FROM ${p.from}`];
  if (p.adapter) lines.push(p.adapter);
  const block = (keyword: string, text: string, what: string) => {
    // A Modelfile's """…""" block ends at the first """ inside it: such a text cannot be written.
    if (text.includes('"""')) p.notes.push(`The ${what} contains """, which a Modelfile cannot hold; it is left out.`);
    else lines.push(`${keyword} """${text}"""`);
  };
  if (p.template) {
    block('TEMPLATE', p.template.template, `${p.template.family} template`);
    for (const stop of p.template.stop) {
      if (stop.includes('"')) p.notes.push(`The stop token ${stop} contains a quote, which a Modelfile parameter cannot hold; it is left out.`);
      else lines.push(`PARAMETER stop "${stop}"`);
    }
  }
  if (p.system) block('SYSTEM', p.system, 'trained system prompt');
  return `${lines.join('\n')}\n`;
}

/** llama.cpp's quantizer from the merged model to `out`, through a temporary file; progress from the bytes written. */
async function quantizeTo(req: ExportRequest, out: string): Promise<void> {
  const header = await readGgufHeader(req.modelPath).catch((e: unknown) => {
    if (e instanceof GgufError) throw new ModelExportError(`The model's file cannot be read: ${e.message}`, 500);
    throw e;
  });
  let total = header.dataOffset;
  for (const t of header.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    total += t.shape.length >= 2 ? n * BYTES_PER_WEIGHT[req.quant] : ggmlTensorBytes(t.type, t.shape);
  }
  await mkdir(dirname(out), { recursive: true });
  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
  const report = async () => {
    const bytes = (await stat(tmp).catch(() => null))?.size ?? 0;
    req.onProgress?.({ phase: 'quantize', bytes: Math.min(bytes, total), totalBytes: Math.max(total, bytes) });
  };
  const timer = req.onProgress ? setInterval(() => void report(), 250) : undefined;
  try {
    // Untouched weights of a quantized base are quantized already: they may be converted again.
    await llamaQuantizeAsync(req.modelPath, tmp, FTYPES[req.quant], { pure: req.quant !== 'q4_k_m', allowRequantize: true, threads: req.threads });
    await rename(tmp, out);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new ModelExportError(`Converting ${req.modelPath} to ${FTYPES[req.quant]} failed: ${(e as Error).message}`, 500);
  } finally {
    if (timer) clearInterval(timer);
  }
  const size = (await stat(out)).size;
  req.onProgress?.({ phase: 'quantize', bytes: size, totalBytes: size });
}

async function copyWithProgress(from: string, to: string, onProgress?: (p: ExportProgress) => void): Promise<void> {
  const size = (await stat(from)).size;
  await mkdir(dirname(to), { recursive: true });
  await copyFile(from, to);
  onProgress?.({ phase: 'copy', bytes: size, totalBytes: size });
}

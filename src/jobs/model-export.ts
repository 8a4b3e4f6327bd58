// Export of a registered fine-tuned model (`nodeai models export`, POST /api/v1/models/:id/export):
// finds its files and its base, runs the trainer's export, and hands the result to Ollama when
// an `ollama` binary is on PATH.
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { exportModel, ModelExportError, type ExportBase, type ExportProgress, type ExportQuant, type ExportResult, type ExportTarget } from '../trainer/model-export.ts';
import { parseModelRef } from '../trainer/model-ref.ts';
import { findModelFile } from '../trainer/model-source.ts';
import { ensureTinyBaseModel } from '../trainer/tiny-model-file.ts';
import type { ModelRecord } from './model-registry.ts';

export interface RegisteredExportOptions {
  to: ExportTarget;
  quant: ExportQuant;
  out: string;
  /** Base + LoRA adapter instead of the merged model. */
  adapter?: boolean;
  dataDir: string;
  /** Run `ollama create` when the binary is on PATH (default true). */
  ollamaCreate?: boolean;
  env?: NodeJS.ProcessEnv;
  onProgress?: (p: ExportProgress) => void;
}

export interface RegisteredExportResult extends ExportResult {
  model: string;
  /** Whether `ollama create` ran (and succeeded: a failure throws); false when no ollama binary was found or it was not asked for. */
  ollama_created: boolean;
}

export async function exportRegisteredModel(model: ModelRecord, o: RegisteredExportOptions): Promise<RegisteredExportResult> {
  const modelPath = model.files.model;
  if (model.provider !== 'local' || !modelPath) {
    throw new ModelExportError(`${model.id} was trained by ${model.provider} and has no model file here; only locally trained models can be exported.`);
  }
  if (!existsSync(modelPath)) throw new ModelExportError(`${model.id}'s model file ${modelPath} is gone; train the model again.`, 404);
  let adapter: { path: string; base: ExportBase } | undefined;
  if (o.adapter) {
    if (!model.files.adapter) throw new ModelExportError(`${model.id} was fully fine-tuned and has no LoRA adapter; export it without --adapter.`);
    adapter = { path: model.files.adapter, base: await exportBase(model.base_model, o) };
  }
  const result = await exportModel({ name: model.name, to: o.to, quant: o.quant, out: o.out, modelPath, adapter, onProgress: o.onProgress });
  let created = false;
  if (result.to === 'ollama' && (o.ollamaCreate ?? true)) {
    const ollama = findOnPath('ollama', o.env ?? process.env);
    if (ollama) {
      await runOllamaCreate(ollama, result.command.slice(1), o.env ?? process.env);
      created = true;
    }
  }
  return { model: model.id, ...result, ollama_created: created };
}

/** The base of an adapter export: its local file, and the name Ollama knows it by when it has one. */
async function exportBase(ref: string, o: RegisteredExportOptions): Promise<ExportBase> {
  const parsed = parseModelRef(ref);
  if (parsed.kind === 'builtin') return { ref, path: await ensureTinyBaseModel(o.dataDir) };
  if (parsed.kind === 'path') return { ref, ...(existsSync(parsed.path) ? { path: parsed.path } : {}) };
  if (parsed.kind === 'hf' || parsed.kind === 'ollama') {
    const path = await findModelFile(parsed, { dataDir: o.dataDir, ...(o.env ? { env: o.env } : {}) });
    // Ollama pulls Hugging Face GGUFs as hf.co/OWNER/REPO:QUANT (a named file has no such form).
    const ollamaName =
      parsed.kind === 'hf'
        ? parsed.file
          ? undefined
          : `hf.co/${parsed.owner}/${parsed.repo}${parsed.quant ? `:${parsed.quant}` : ''}`
        : `${parsed.namespace === 'library' ? '' : `${parsed.namespace}/`}${parsed.name}:${parsed.tag}`;
    return { ref, ...(path ? { path } : {}), ...(ollamaName ? { ollamaName } : {}) };
  }
  return { ref };
}

function findOnPath(binary: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, binary);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

function runOllamaCreate(ollama: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(ollama, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (e) => reject(new ModelExportError(`Could not run ${ollama}: ${e.message}`, 500)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new ModelExportError(`\`ollama ${args.join(' ')}\` failed (exit ${code}): ${output.trim().slice(-800)}`, 502));
    });
  });
}

// Fine-tuned models: each succeeded job registers its model exactly once (the unique job_id
// column enforces it even across processes), and the Chat node finds models here by name.
import { rm, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { Kysely, Transaction } from 'kysely';
import { findModel } from '../datasets/index.ts';
import { ggufStem, isGgufPath } from '../trainer/gguf.ts';
import { looksLikeRemoteModelRef, parseModelRef } from '../trainer/model-ref.ts';
import type { EvaluationReport, ModelEvaluationSummary } from '../trainer/evaluation-report.ts';
import type { Database, JobRow, ModelRow, Store } from '../store/index.ts';
import { JobError, ModelNotFoundError } from './errors.ts';

export interface ModelFiles {
  model?: string;
  adapter?: string;
  [kind: string]: string | undefined;
}

export interface ModelRecord {
  id: string;
  object: 'model';
  name: string;
  base_model: string;
  provider: string;
  job_id: string | null;
  training_examples: number | null;
  epochs: number | null;
  metrics: Record<string, number> | null;
  /** The automatic evaluation's totals per model (base and fine-tuned), when the job ran one; the full report is evaluation(). */
  evaluation: EvaluationOverview | null;
  files: ModelFiles;
  path: string | null;
  /** The full model file's size in bytes, taken when the model was registered; null without one (adapter-only, remote). */
  bytes: number | null;
  usage_count: number;
  last_used_at: number | null;
  /** Epoch milliseconds. */
  created_at: number;
  updated_at: number;
}

export interface EvaluationOverview {
  models: string[];
  summary: Record<string, ModelEvaluationSummary>;
  /** How many examples the report holds. */
  examples: number;
}

export interface RegisterModelInput {
  job: Pick<JobRow, 'id' | 'base_model' | 'provider' | 'suffix'>;
  files: ModelFiles;
  /** The model's name when the provider chose it (a remote `ft:` model); default fineTunedModelName. */
  name?: string;
  trainingExamples?: number | null;
  epochs?: number | null;
  metrics?: Record<string, number> | null;
  /** The automatic evaluation of the model (base vs fine-tuned on the validation split). */
  evaluation?: EvaluationReport | null;
}

const NAME = /^[\w.:@/+-]{1,200}$/;

/** The base model's part of a fine-tuned model's name. */
function baseStem(base: string): string {
  try {
    const ref = parseModelRef(base);
    if (ref.kind === 'path') return ggufStem(ref.path);
    if (ref.kind === 'hf') return ref.file ? ggufStem(ref.file) : ref.repo.replace(/-GGUF$/i, '');
    if (ref.kind === 'ollama') return `${ref.name}-${ref.tag}`;
  } catch {
    // Not a well-formed reference: named by its text below.
  }
  return base.replace(/^ft:/, '').split(':')[0];
}

/**
 * `ft:nodeai-tiny:<suffix>:<first 8 of the job ID>`, OpenAI's pattern without the organization; a
 * GGUF base given by its path is named by its file name (`/models/SmolLM2-135M.gguf` → SmolLM2-135M),
 * an hf: base by its repository (`hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q8_0` → Qwen2.5-0.5B-Instruct)
 * or file, an ollama: base by name and tag (`ollama:qwen2.5:0.5b` → qwen2.5-0.5b).
 */
export function fineTunedModelName(job: Pick<JobRow, 'id' | 'base_model' | 'suffix'>): string {
  const base = baseStem(job.base_model).replace(/[^\w.-]/g, '-');
  const suffix = (job.suffix ?? '').toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  const part = job.id.replace(/^ftjob-/, '').slice(0, 8);
  return `ft:${base}:${suffix}:${part}`;
}

/**
 * Every column but the full evaluation report (it can hold hundreds of answers): listings show its
 * summary, kept in its own column; only evaluation() reads the report.
 */
const RECORD_COLUMNS = [
  'id', 'name', 'base_model', 'provider', 'job_id', 'training_examples', 'epochs', 'metrics_json', 'files_json',
  'evaluation_summary_json', 'model_bytes', 'path', 'usage_count', 'last_used_at', 'created_at', 'updated_at',
] as const satisfies ReadonlyArray<keyof ModelRow>;
type RecordRow = Pick<ModelRow, (typeof RECORD_COLUMNS)[number]>;

function toModelRecord(row: RecordRow): ModelRecord {
  return {
    id: row.id,
    object: 'model',
    name: row.name,
    base_model: row.base_model,
    provider: row.provider,
    job_id: row.job_id,
    training_examples: row.training_examples === null ? null : Number(row.training_examples),
    epochs: row.epochs,
    metrics: row.metrics_json ? (JSON.parse(row.metrics_json) as Record<string, number>) : null,
    evaluation: row.evaluation_summary_json ? (JSON.parse(row.evaluation_summary_json) as EvaluationOverview) : null,
    files: row.files_json ? (JSON.parse(row.files_json) as ModelFiles) : {},
    path: row.path,
    bytes: row.model_bytes === null ? null : Number(row.model_bytes),
    usage_count: Number(row.usage_count),
    last_used_at: row.last_used_at === null ? null : Number(row.last_used_at),
    created_at: Number(row.created_at),
    updated_at: Number(row.updated_at),
  };
}

function overviewOf(report: EvaluationReport): EvaluationOverview {
  return { models: report.models, summary: report.summary, examples: report.examples.length };
}

/** The size of a file, or null when it cannot be read (gone, or no permission). */
function sizeOf(path: string): Promise<number | null> {
  return stat(path).then((s) => s.size, () => null);
}

export class ModelRegistry {
  private readonly db: Kysely<Database>;

  constructor(private readonly store: Store) {
    this.db = store.db;
  }

  /**
   * Registers the model of a succeeded job, inside the caller's transaction when one is given.
   * A second call for the same job returns the first registration unchanged.
   */
  async register(input: RegisterModelInput, trx: Kysely<Database> | Transaction<Database> = this.db): Promise<ModelRecord> {
    const existing = await trx.selectFrom('models').select(RECORD_COLUMNS).where('job_id', '=', input.job.id).executeTakeFirst();
    if (existing) return toModelRecord(existing);
    const id = input.name ?? fineTunedModelName(input.job);
    const modelBytes = input.files.model ? await sizeOf(registeredFilePath(this.store.dataDir, input.files.model)) : null;
    const now = Date.now();
    const row = {
      id,
      name: id,
      base_model: input.job.base_model,
      provider: input.job.provider,
      job_id: input.job.id,
      training_examples: input.trainingExamples ?? null,
      epochs: input.epochs ?? null,
      metrics_json: input.metrics ? JSON.stringify(input.metrics) : null,
      files_json: JSON.stringify(input.files),
      evaluation_json: input.evaluation ? JSON.stringify(input.evaluation) : null,
      evaluation_summary_json: input.evaluation ? JSON.stringify(overviewOf(input.evaluation)) : null,
      model_bytes: modelBytes,
      path: input.files.model ?? input.files.adapter ?? null,
      last_used_at: null,
      created_at: now,
      updated_at: now,
    };
    // The unique job_id makes a racing second registration a no-op instead of a duplicate.
    await trx.insertInto('models').values(row).onConflict((oc) => oc.column('job_id').doNothing()).execute();
    const stored = await trx.selectFrom('models').select(RECORD_COLUMNS).where('job_id', '=', input.job.id).executeTakeFirstOrThrow();
    return toModelRecord(stored);
  }

  /** Newest first. */
  async list(options: { limit?: number } = {}): Promise<ModelRecord[]> {
    let q = this.db.selectFrom('models').select(RECORD_COLUMNS).orderBy('created_at', 'desc').orderBy('id');
    if (options.limit) q = q.limit(options.limit);
    return Promise.all((await q.execute()).map((row) => this.toRecord(row)));
  }

  /**
   * A row as a record. A model registered before its size was kept (migration 0005) gets it from
   * its file here, once: it is stored, so a listing reads no file for it again. (A model whose file
   * is gone has no size to store, and is looked at again next time.)
   */
  private async toRecord(row: RecordRow): Promise<ModelRecord> {
    const record = toModelRecord(row);
    if (record.bytes !== null || !record.files.model) return record;
    const bytes = await sizeOf(registeredFilePath(this.store.dataDir, record.files.model));
    if (bytes === null) return record;
    await this.db.updateTable('models').set({ model_bytes: bytes }).where('id', '=', record.id).execute();
    return { ...record, bytes };
  }

  /** By model ID (`ft:…`) or display name. */
  async find(idOrName: string): Promise<ModelRecord | undefined> {
    if (typeof idOrName !== 'string' || idOrName === '') return undefined;
    const row = await this.db
      .selectFrom('models')
      .select(RECORD_COLUMNS)
      .where((eb) => eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)]))
      .orderBy('created_at')
      .executeTakeFirst();
    return row ? this.toRecord(row) : undefined;
  }

  /**
   * A registered model that the local trainer can train further (continued fine-tuning): a local
   * model with a full model file (LoRA adapters are merged into it). Undefined otherwise.
   */
  async trainable(idOrName: string): Promise<(ModelRecord & { files: { model: string } }) | undefined> {
    const found = await this.find(idOrName);
    return found && found.provider === 'local' && found.files.model ? (found as ModelRecord & { files: { model: string } }) : undefined;
  }

  async get(idOrName: string): Promise<ModelRecord> {
    const found = await this.find(idOrName);
    if (!found) throw new ModelNotFoundError(idOrName);
    return found;
  }

  async findByJob(jobId: string): Promise<ModelRecord | undefined> {
    const row = await this.db.selectFrom('models').select(RECORD_COLUMNS).where('job_id', '=', jobId).executeTakeFirst();
    return row ? this.toRecord(row) : undefined;
  }

  /** Changes the display name; the model ID that chat requests may use stays valid too. */
  async rename(idOrName: string, newName: string): Promise<ModelRecord> {
    if (!NAME.test(newName)) {
      throw new JobError('invalid_model_name', `Model name ${JSON.stringify(newName.slice(0, 80))} is invalid: use 1–200 letters, digits or . _ - : @ / +, no spaces.`);
    }
    // Names are looked up before the catalogue and before paths (base_model, chat model): a name
    // that is a catalogue model, a .gguf path or an hf:/ollama: reference would hide it.
    if (findModel(newName) || isGgufPath(newName) || newName.startsWith('ft:') || looksLikeRemoteModelRef(newName)) {
      throw new JobError('invalid_model_name', `Model name ${JSON.stringify(newName)} would hide a built-in model, a fine-tuned model ID, a .gguf path or an hf:/ollama: model; pick another name.`);
    }
    const model = await this.get(idOrName);
    const clash = await this.find(newName);
    if (clash && clash.id !== model.id) {
      throw new JobError('model_name_taken', `A model named ${JSON.stringify(newName)} already exists (${clash.id}); pick another name.`);
    }
    await this.db.updateTable('models').set({ name: newName, updated_at: Date.now() }).where('id', '=', model.id).execute();
    return this.get(model.id);
  }

  /**
   * Removes the model's row and its files. Files are only deleted when they lie inside the data
   * directory: a registry row must never be able to make NodeAI delete a file elsewhere.
   */
  async delete(idOrName: string): Promise<{ model: ModelRecord; removedFiles: string[]; keptFiles: string[] }> {
    const model = await this.get(idOrName);
    const removedFiles: string[] = [];
    const keptFiles: string[] = [];
    const paths = new Set([...Object.values(model.files), model.path].filter((p): p is string => typeof p === 'string' && p !== ''));
    for (const p of paths) {
      if (isInside(this.store.dataDir, p)) {
        await rm(p, { force: true });
        removedFiles.push(p);
      } else {
        keptFiles.push(p);
      }
    }
    await this.db.deleteFrom('models').where('id', '=', model.id).execute();
    return { model, removedFiles, keptFiles };
  }

  /** The full report of the model's automatic evaluation; undefined when it has none. */
  async evaluation(idOrName: string): Promise<EvaluationReport | undefined> {
    const model = await this.get(idOrName);
    const row = await this.db.selectFrom('models').select('evaluation_json').where('id', '=', model.id).executeTakeFirst();
    return row?.evaluation_json ? (JSON.parse(row.evaluation_json) as EvaluationReport) : undefined;
  }

  /** Counts a chat with the model. */
  async recordUse(idOrName: string): Promise<void> {
    const model = await this.find(idOrName);
    if (!model) return;
    await this.db
      .updateTable('models')
      .set((eb) => ({ usage_count: eb('usage_count', '+', 1), last_used_at: Date.now() }))
      .where('id', '=', model.id)
      .execute();
  }
}

export function isInside(dir: string, path: string): boolean {
  const rel = relative(resolve(dir), resolve(path));
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

/** A registry path as a file to open: stored paths relative to the data directory are resolved against it. */
export function registeredFilePath(dataDir: string, stored: string): string {
  return isAbsolute(stored) ? stored : join(dataDir, stored);
}

// The catalogue of recommended small bases to fine-tune: what `nodeai models catalog` prints, what
// GET /api/v1/models/catalog serves and what the canvas offers as the Fine-Tune node's base models.
//
// Where the figures come from (looked up 2026-11-30; the hub's own answer wins when a file is pulled):
// - parameters, context length, architecture and license: each model's card on huggingface.co
//   (HuggingFaceTB/SmolLM2-*-Instruct, Qwen/Qwen2.5-*-Instruct, Qwen/Qwen3-*, meta-llama/Llama-3.2-*-Instruct,
//   google/gemma-3-*-it) and the GGUF header fields those models convert to.
// - file sizes: the hub's file listings and the quantizer's model cards, in decimal units as the hub
//   shows them, so they are approximate (±0.5 %):
//     bartowski/SmolLM2-360M-Instruct-GGUF "Files" tab (Q4_K_M 271 MB, Q6_K 367 MB, Q8_0 386 MB);
//     bartowski/Llama-3.2-1B-Instruct-GGUF model card (f16 2.48 GB, Q8_0 1.32 GB, Q6_K 1.02 GB, Q4_K_M 0.81 GB);
//     bartowski/Qwen_Qwen3-1.7B-GGUF model card (bf16 4.07 GB, Q8_0 2.17 GB, Q6_K 1.67 GB);
//     bartowski/google_gemma-3-1b-it-qat-GGUF model card (bf16 2.01 GB, Q8_0 1.07 GB, Q6_K 1.01 GB, Q4_K_M 0.81 GB, Q4_0 0.72 GB);
//   Three figures once cited from a third party (llmrun.dev: Qwen2.5-1.5B-Instruct Q4_K_M 0.93 GB and
//   Q8_0 1.54 GB, gemma-3-270m-it Q4_K_M 0.16 GB) were dropped: they cannot be those files' sizes
//   (docs/CATALOGUE.md says why), so those files take the computed size below.
//   A size not found in such a source is computed, not guessed: catalog-file-sizes.json, written by
//   bench/catalog-sizes.ts, holds the size of the file llama.cpp's quantizer makes from a GGUF with
//   the model's exact tensor shapes (its dry run; docs/CATALOGUE.md). Each file says which it is
//   (`bytes_source`); the pull reports the real size.
import computedSizes from './catalog-file-sizes.json' with { type: 'json' };
import recordedFigures from './benchmark-figures.json' with { type: 'json' };
import { findDownloadedHubModel } from './hub-download.ts';
import { parseModelRef, type HubModelRef, type RemoteModelRef } from './model-ref.ts';
import { ModelSourceError } from './model-source-errors.ts';

export interface CatalogFile {
  quant: string;
  /**
   * The file's size in bytes: the hub's figure (approximate, ±0.5 %, decimal units as the hub
   * shows them) when `bytes_source` is 'hub'; else computed by llama.cpp's quantizer on the model's
   * tensor shapes, exact for those shapes and that tokenizer (docs/CATALOGUE.md says how close).
   */
  bytes: number;
  /** 'hub': from the hub's file listing or the quantizer's model card; 'computed': by llama.cpp's quantizer (dry run) on the model's tensor shapes. */
  bytes_source: 'hub' | 'computed';
  uri: string;
}

/** catalog-file-sizes.json, as `npx tsx bench/catalog-sizes.ts --write …` records it. */
export interface ComputedCatalogSizes {
  /** In words, how the sizes were computed. */
  method: string;
  /** The llama.cpp build whose quantizer computed them. */
  llama_cpp: string;
  command: string;
  /** ISO time of the run. */
  date: string;
  /** By catalogue ID. */
  models: Record<
    string,
    {
      /** Parameter count of the shapes used (checked against the card's). */
      parameters: number;
      /** Where the shapes come from. */
      shapes: string;
      /** Whose tokenizer's metadata the header holds. */
      tokenizer: string;
      /** By quant: the output file's size and, of it, the header's (metadata and tensor infos). */
      files: Record<string, { bytes: number; header_bytes: number }>;
    }
  >;
}

export interface CatalogModel {
  id: string;
  /** The default quant's reference, what a base-model field takes. */
  uri: string;
  name: string;
  family: string;
  /** GGUF general.architecture. */
  architecture: string;
  /** Parameter count. */
  parameters: number;
  license: string;
  context_length: number;
  files: CatalogFile[];
  default_quant: string;
  /** A file of this model is in the data dir (any quant; `local_path` says which). */
  downloaded: boolean;
  local_path: string | null;
  /** Training tokens per second measured by the trainer benchmark (see `benchmark`); null until measured. */
  est_train_tok_s: number | null;
  /** Peak resident memory while training, MB, measured by the trainer benchmark; null until measured. */
  est_peak_rss_mb: number | null;
  /** What the two figures above were measured on; null when they are. */
  benchmark: CatalogBenchmark | null;
}

/** Where a catalogue model's training figures come from: one recorded `npm run bench:trainer` config. */
export interface CatalogBenchmark {
  /** The benchmark config (bench/trainer.ts) whose shapes are this model's, e.g. qwen05_lora. */
  config: string;
  /** In words: shapes, LoRA rank, base type, context, batch, threads, random weights. */
  setup: string;
  machine: string;
  /** ISO time of the run. */
  date: string;
  /** The 1-minute load average before each run (a busy machine lowers tok/s). */
  loads_before: number[];
  command: string;
}

/** One config as `npm run bench:trainer -- --record src/trainer/benchmark-figures.json` writes it. */
export interface RecordedTrainerBenchmark {
  label: string;
  nodeai_tok_s: number | null;
  nodeai_rss_mb: number | null;
  /** Who computed the matmuls and how the frozen base was held ("oneDNN 2.6.3 (AMX BF16 tiles); BF16 frozen base"); absent in older records. */
  nodeai_matmul_and_base?: string | null;
  threads: number;
  runs: number;
  ctx: number;
  batch: number;
  /** Run at a smaller size than the config's own (full_ctx, full_batch), e.g. to fit in memory. */
  reduced: boolean;
  full_ctx: number;
  full_batch: number;
  loads_before: number[];
  machine: string;
  date: string;
  command: string;
}

const GB = 1e9;
const MB = 1e6;

/** A catalogue line as written below: the model's facts, its repository and per-quant sizes. */
export type CatalogEntry = Pick<CatalogModel, 'id' | 'name' | 'family' | 'architecture' | 'parameters' | 'license' | 'context_length' | 'default_quant'> & {
  /** OWNER/REPO on the hub, whose files are named …-QUANT.gguf. */
  repo: string;
  /** The quants offered, with the hub's size where a source above gave one, else null (then the computed one is used). */
  files: Record<string, number | null>;
};

/** The catalogue's models as written here, before what is downloaded and the computed sizes are added. */
export const CATALOG_ENTRIES: readonly CatalogEntry[] = [
  { id: 'smollm2-135m-instruct', name: 'SmolLM2 135M Instruct', family: 'SmolLM2', architecture: 'llama', parameters: 135e6, license: 'apache-2.0', context_length: 8192, repo: 'bartowski/SmolLM2-135M-Instruct-GGUF', files: { Q8_0: null, Q4_K_M: null }, default_quant: 'Q8_0' },
  { id: 'smollm2-360m-instruct', name: 'SmolLM2 360M Instruct', family: 'SmolLM2', architecture: 'llama', parameters: 362e6, license: 'apache-2.0', context_length: 8192, repo: 'bartowski/SmolLM2-360M-Instruct-GGUF', files: { Q8_0: 386 * MB, Q6_K: 367 * MB, Q4_K_M: 271 * MB }, default_quant: 'Q8_0' },
  { id: 'smollm2-1.7b-instruct', name: 'SmolLM2 1.7B Instruct', family: 'SmolLM2', architecture: 'llama', parameters: 1.71e9, license: 'apache-2.0', context_length: 8192, repo: 'bartowski/SmolLM2-1.7B-Instruct-GGUF', files: { Q8_0: null, Q4_K_M: null }, default_quant: 'Q4_K_M' },
  { id: 'qwen2.5-0.5b-instruct', name: 'Qwen2.5 0.5B Instruct', family: 'Qwen2.5', architecture: 'qwen2', parameters: 494e6, license: 'apache-2.0', context_length: 32768, repo: 'Qwen/Qwen2.5-0.5B-Instruct-GGUF', files: { Q8_0: null, Q4_K_M: null }, default_quant: 'Q8_0' },
  { id: 'qwen2.5-1.5b-instruct', name: 'Qwen2.5 1.5B Instruct', family: 'Qwen2.5', architecture: 'qwen2', parameters: 1.54e9, license: 'apache-2.0', context_length: 32768, repo: 'Qwen/Qwen2.5-1.5B-Instruct-GGUF', files: { Q8_0: null, Q4_K_M: null }, default_quant: 'Q4_K_M' },
  { id: 'qwen3-0.6b', name: 'Qwen3 0.6B', family: 'Qwen3', architecture: 'qwen3', parameters: 0.6e9, license: 'apache-2.0', context_length: 32768, repo: 'bartowski/Qwen_Qwen3-0.6B-GGUF', files: { Q8_0: null, Q4_K_M: null }, default_quant: 'Q8_0' },
  { id: 'qwen3-1.7b', name: 'Qwen3 1.7B', family: 'Qwen3', architecture: 'qwen3', parameters: 1.7e9, license: 'apache-2.0', context_length: 32768, repo: 'bartowski/Qwen_Qwen3-1.7B-GGUF', files: { Q8_0: 2.17 * GB, Q6_K: 1.67 * GB, Q4_K_M: null, BF16: 4.07 * GB }, default_quant: 'Q4_K_M' },
  { id: 'llama-3.2-1b-instruct', name: 'Llama 3.2 1B Instruct', family: 'Llama 3.2', architecture: 'llama', parameters: 1.24e9, license: 'llama3.2', context_length: 131072, repo: 'bartowski/Llama-3.2-1B-Instruct-GGUF', files: { Q8_0: 1.32 * GB, Q6_K: 1.02 * GB, Q4_K_M: 0.81 * GB, F16: 2.48 * GB }, default_quant: 'Q4_K_M' },
  { id: 'llama-3.2-3b-instruct', name: 'Llama 3.2 3B Instruct', family: 'Llama 3.2', architecture: 'llama', parameters: 3.21e9, license: 'llama3.2', context_length: 131072, repo: 'bartowski/Llama-3.2-3B-Instruct-GGUF', files: { Q4_K_M: null, Q8_0: null }, default_quant: 'Q4_K_M' },
  { id: 'gemma-3-270m-it', name: 'Gemma 3 270M it', family: 'Gemma 3', architecture: 'gemma3', parameters: 268e6, license: 'gemma', context_length: 32768, repo: 'unsloth/gemma-3-270m-it-GGUF', files: { Q8_0: null, Q4_K_M: null }, default_quant: 'Q8_0' },
  { id: 'gemma-3-1b-it', name: 'Gemma 3 1B it (QAT)', family: 'Gemma 3', architecture: 'gemma3', parameters: 1.0e9, license: 'gemma', context_length: 32768, repo: 'bartowski/google_gemma-3-1b-it-qat-GGUF', files: { Q8_0: 1.07 * GB, Q6_K: 1.01 * GB, Q4_K_M: 0.81 * GB, Q4_0: 0.72 * GB, BF16: 2.01 * GB }, default_quant: 'Q4_K_M' },
];

/** The recorded benchmark results (written by the benchmark, never by hand), by config name. */
export const RECORDED_BENCHMARKS = (recordedFigures as { configs: Record<string, RecordedTrainerBenchmark> }).configs;

/** Which benchmark config has a catalogue model's shapes (LoRA r=16 on its default quant's type). */
export const BENCHMARK_CONFIG_OF: Record<string, string> = {
  'qwen2.5-0.5b-instruct': 'qwen05_lora',
  'llama-3.2-1b-instruct': 'llama1b_lora',
};

/**
 * Measured training speed and memory per catalogue model, from the recorded benchmark results;
 * a model without a recorded, finished NodeAI run has none, so the catalogue says null instead of
 * inventing a figure.
 */
export const BENCHMARK_FIGURES: Record<string, { est_train_tok_s: number; est_peak_rss_mb: number; benchmark: CatalogBenchmark }> = Object.fromEntries(
  Object.entries(BENCHMARK_CONFIG_OF).flatMap(([id, config]) => {
    const r = RECORDED_BENCHMARKS[config];
    if (!r || r.nodeai_tok_s === null || r.nodeai_rss_mb === null) return [];
    const setup = `${r.label}, random weights, ctx ${r.ctx}, batch ${r.batch}${r.reduced ? ` (reduced from ctx ${r.full_ctx}, batch ${r.full_batch})` : ''}, ${r.threads} thread${r.threads === 1 ? '' : 's'}, median of ${r.runs} run${r.runs === 1 ? '' : 's'}${r.nodeai_matmul_and_base ? ` (${r.nodeai_matmul_and_base})` : ''}`;
    const benchmark: CatalogBenchmark = { config, setup, machine: r.machine, date: r.date, loads_before: r.loads_before, command: r.command };
    return [[id, { est_train_tok_s: r.nodeai_tok_s, est_peak_rss_mb: r.nodeai_rss_mb, benchmark }]];
  }),
);

/** The sizes bench/catalog-sizes.ts computed, by catalogue ID. */
export const COMPUTED_CATALOG_SIZES = computedSizes as ComputedCatalogSizes;

/** A model's files: the hub's size where the catalogue has one, else the computed one. */
function catalogFiles(e: CatalogEntry): CatalogFile[] {
  return Object.entries(e.files).map(([quant, hubBytes]): CatalogFile => {
    const uri = uriOf(e, quant);
    if (hubBytes !== null) return { quant, bytes: Math.round(hubBytes), bytes_source: 'hub', uri };
    const computed = COMPUTED_CATALOG_SIZES.models[e.id]?.files[quant];
    if (!computed) throw new Error(`The catalogue has no size for ${e.id} ${quant}: record it with \`${COMPUTED_CATALOG_SIZES.command}\`.`);
    return { quant, bytes: computed.bytes, bytes_source: 'computed', uri };
  });
}

function uriOf(e: CatalogEntry, quant: string): string {
  return `hf:${e.repo}:${quant}`;
}

/** The catalogue with what is already downloaded into `dataDir`; reads the disk, never the network. */
export async function listCatalog(dataDir: string): Promise<CatalogModel[]> {
  return Promise.all(
    CATALOG_ENTRIES.map(async (e): Promise<CatalogModel> => {
      const quants = [e.default_quant, ...Object.keys(e.files).filter((q) => q !== e.default_quant)];
      let localPath: string | null = null;
      for (const q of quants) {
        const found = await findDownloadedHubModel(parseModelRef(uriOf(e, q)) as HubModelRef, dataDir);
        if (found) {
          localPath = found.path;
          break;
        }
      }
      const bench = BENCHMARK_FIGURES[e.id];
      return {
        id: e.id,
        uri: uriOf(e, e.default_quant),
        name: e.name,
        family: e.family,
        architecture: e.architecture,
        parameters: e.parameters,
        license: e.license,
        context_length: e.context_length,
        files: catalogFiles(e),
        default_quant: e.default_quant,
        downloaded: localPath !== null,
        local_path: localPath,
        est_train_tok_s: bench?.est_train_tok_s ?? null,
        est_peak_rss_mb: bench?.est_peak_rss_mb ?? null,
        benchmark: bench?.benchmark ?? null,
      };
    }),
  );
}

/** A catalogue model by ID (`qwen2.5-0.5b-instruct`), for "nodeai models pull ID". */
export function catalogUri(id: string): string | undefined {
  const e = CATALOG_ENTRIES.find((x) => x.id === id.toLowerCase());
  return e ? uriOf(e, e.default_quant) : undefined;
}

/**
 * What `nodeai models pull` and POST /api/v1/models/pull take: an hf: or ollama: reference, or a
 * catalogue ID. Throws {@link ModelSourceError} `invalid_model_ref` for anything else.
 */
export function parsePullRef(text: string): RemoteModelRef {
  const ref = parseModelRef(catalogUri(text) ?? text);
  if (ref.kind !== 'hf' && ref.kind !== 'ollama') {
    throw new ModelSourceError('invalid_model_ref', text, `${JSON.stringify(text.slice(0, 80))} is not something to pull: use hf:OWNER/REPO:QUANT, hf:OWNER/REPO/FILE.gguf, ollama:NAME[:TAG] or an ID from the catalogue ("nodeai models catalog", GET /api/v1/models/catalog).`);
  }
  return ref;
}

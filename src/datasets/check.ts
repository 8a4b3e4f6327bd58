import { estimateCost, resolveEpochs, type CostEstimate, type Epochs } from './cost.ts';
import { DuplicateFinder } from './dedupe.ts';
import { hints, issue, IssueCollector, NO_TRAINING_DATA, type DatasetIssue, type IssueCode } from './issues.ts';
import type { ReadProgress } from './line-reader.ts';
import { DEFAULT_MODEL, getModel, modelStatus, type ModelInfo } from './models.ts';
import { readRecords, type CsvColumns } from './records.ts';
import { openSource, type DatasetSource } from './source.ts';
import { checkSplitOptions, createSplitter, type SplitOptions } from './split.ts';
import { distribution, histogram, IntList, type Distribution, type Histogram } from './stats.ts';
import { byteTokenizer, countExampleTokens, openAITokenizer, type Tokenizer } from './tokenizer.ts';
import { isPreferenceExample, type DataFormat, type FileType } from './types.ts';
import { newFormatState, validateRecord } from './validate.ts';

export const MIN_EXAMPLES = 10;
export const RECOMMENDED_EXAMPLES = 50;

export interface ReadOptions {
  /** Force the file type instead of guessing it from the name and first bytes. */
  fileType?: FileType;
  csv?: { columns?: CsvColumns; delimiter?: string };
  /** Longest line (or JSON array element) read; longer ones are reported, not buffered. */
  maxLineBytes?: number;
  signal?: AbortSignal;
}

export interface CheckOptions extends ReadOptions, SplitOptions {
  /** Model id, alias or catalogue entry; default `nodeai-tiny`, the embedded local model. */
  model?: string | ModelInfo;
  epochs?: Epochs;
  /** Overrides the model's tokenizer (the trainer passes its own for local models). */
  tokenizer?: Tokenizer;
  /** false skips token statistics and cost (faster; no tokenizer is loaded). Default true. */
  countTokens?: boolean;
  /** How many errors and how many warnings are kept in detail; all are counted. Default 100. */
  maxIssues?: number;
  /** "Today", for the shutdown-date warnings. */
  now?: Date;
  /** Called after each chunk of the file (64 KiB when reading from disk), for progress bars and heartbeats. */
  onProgress?: (progress: { bytes: number; examples: number }) => void;
}

export interface TokenReport {
  model: string;
  tokenizer: string;
  /** The model's per-example limit. */
  limit: number;
  total: number;
  per_example: Distribution | null;
  /** Tokens per example as a histogram, for a chart of where the lengths lie. */
  per_example_histogram: Histogram | null;
  assistant_per_example: Distribution | null;
  over_limit: number;
}

/** The result of `checkDataset`; `JSON.stringify` of it is the CLI's `--json` output. */
export interface DatasetReport {
  file: string | null;
  file_type: FileType;
  format: DataFormat | null;
  bytes: number;
  /** Examples read (non-blank lines / array elements / CSV rows), valid or not. */
  examples: number;
  valid_examples: number;
  /** No errors: a training job can be created from this file. */
  trainable: boolean;
  errors: DatasetIssue[];
  warnings: DatasetIssue[];
  error_count: number;
  warning_count: number;
  /** Every issue code seen, with how often: complete even when `errors` / `warnings` are capped. */
  issue_counts: Partial<Record<IssueCode, number>>;
  messages_per_example: Distribution | null;
  tokens: TokenReport | null;
  split: { train: number; validation: number; seed: number; validation_split: number };
  cost: CostEstimate | null;
}

export function resolveModel(model: string | ModelInfo | undefined): ModelInfo {
  return typeof model === 'object' ? model : getModel(model ?? DEFAULT_MODEL);
}

export async function tokenizerFor(model: ModelInfo): Promise<Tokenizer> {
  return model.tokenizer === 'bytes' ? byteTokenizer : openAITokenizer(model.tokenizer);
}

const duplicateIssue = (line: number, first: number) =>
  issue('duplicate_example', line, null, `Same example as line ${first}`, 'Remove the repeat: duplicates over-weight one answer and leak into the validation set');

function abortIfAsked(signal: AbortSignal | undefined) {
  if (signal?.aborted) throw signal.reason ?? new Error('aborted');
}

/**
 * Reads a training file once, streaming, and reports everything a user should know before
 * training: errors and warnings with line numbers, token statistics, the train/validation split
 * and the cost. Memory stays bounded whatever the file size (typed arrays for per-example
 * numbers, digests for duplicates, the first `maxIssues` issues kept in detail).
 * Throws only for what is not about the data: a missing file, an unknown model, bad options.
 */
export async function checkDataset(source: DatasetSource, options: CheckOptions = {}): Promise<DatasetReport> {
  const model = resolveModel(options.model);
  const { validationSplit, seed } = checkSplitOptions(options);
  if (typeof options.epochs === 'number') resolveEpochs(options.epochs, 1);
  const withTokens = options.countTokens !== false;
  const tokenizer = withTokens ? (options.tokenizer ?? (await tokenizerFor(model))) : null;

  const opened = await openSource(source, options.fileType);
  const progress: ReadProgress = { bytes: 0 };
  const issues = new IssueCollector(options.maxIssues ?? 100);
  const sink = issues.add;
  const state = newFormatState();
  const dupes = new DuplicateFinder();
  const messageCounts = new IntList();
  const totals = new IntList();
  const assistantTotals = new IntList();
  let examples = 0;
  let valid = 0;
  let overLimit = 0;

  for await (const batch of readRecords(opened.chunks, opened.fileType, { maxLineBytes: options.maxLineBytes, progress, csv: options.csv })) {
    abortIfAsked(options.signal);
    for (const item of batch) {
      if (item.issue) {
        // A fatal reading problem (binary file, broken array) is about the file, not one example.
        if (!item.fatal) examples++;
        sink(item.issue);
        continue;
      }
      examples++;
      const line = item.line;
      const ok = validateRecord(item.value, line, state, sink);
      if (!ok) continue;
      valid++;
      const e = ok.example;
      const dpo = isPreferenceExample(e);
      messageCounts.push(dpo ? e.input.messages.length + 1 : e.messages.length);
      const first = dpo ? dupes.checkExample(e.input.messages, [e.preferred_output, e.non_preferred_output], line) : dupes.checkExample(e.messages, e.tools, line);
      if (first !== null) sink(duplicateIssue(line, first));
      if (tokenizer) {
        const t = countExampleTokens(tokenizer, e);
        totals.push(t.total);
        assistantTotals.push(t.assistant);
        if (t.total > model.tokenLimit) {
          overLimit++;
          sink(
            issue(
              'over_token_limit',
              line,
              null,
              `Example has ${t.total} tokens, over ${model.id}'s limit of ${model.tokenLimit}; it will be truncated`,
              'Shorten or split the example, or choose a model with a longer context',
            ),
          );
        }
      }
    }
    options.onProgress?.({ bytes: progress.bytes, examples });
  }

  if (examples === 0 && issues.errorCount === 0) {
    sink(issue('no_training_data', null, null, NO_TRAINING_DATA, hints.noTrainingData));
  } else if (examples > 0 && examples < MIN_EXAMPLES) {
    sink(issue('too_few_examples', null, null, `The file has ${examples} example${examples === 1 ? '' : 's'}; fine-tuning needs at least ${MIN_EXAMPLES}`, `Add ${MIN_EXAMPLES - examples} or more examples (50–100 good ones is a sound start)`));
  } else if (examples >= MIN_EXAMPLES && examples < RECOMMENDED_EXAMPLES) {
    sink(issue('few_examples', null, null, `The file has ${examples} examples; results usually improve clearly from ${RECOMMENDED_EXAMPLES} on`, 'Add more examples of the behaviour you want, if you can'));
  }
  if (state.format === 'dpo' && !model.methods.includes('dpo')) {
    sink(issue('unsupported_method', null, null, `${model.id} cannot be trained on DPO preference data`, `Choose a model that supports DPO (e.g. gpt-4.1-mini-2025-04-14), or convert the data to chat examples`));
  }
  const status = modelStatus(model, options.now);
  if (status.shutDown) {
    sink(issue('model_shutdown', null, null, `${model.id} was shut down on ${model.shutdown}; it and fine-tunes built on it no longer serve`, `Train the local model (nodeai-tiny) or another provider's model instead`));
  } else if (status.closed) {
    sink(issue('fine_tuning_ended', null, null, `${model.provider === 'openai' ? 'OpenAI' : model.provider} stopped accepting new fine-tuning jobs on ${model.newJobsEnd}`, 'Train with the local provider (the default) instead'));
  }

  const splitter = createSplitter(valid, { validationSplit, seed });
  let cost: CostEstimate | null = null;
  let tokens: TokenReport | null = null;
  if (tokenizer) {
    const all = totals.view();
    const train = new Int32Array(splitter.train);
    for (let i = 0, j = 0; i < all.length; i++) if (splitter.next() === 'train') train[j++] = all[i];
    cost = estimateCost(model, train, options.epochs);
    let total = 0;
    for (let i = 0; i < all.length; i++) total += all[i];
    tokens = {
      model: model.id,
      tokenizer: tokenizer.name,
      limit: model.tokenLimit,
      total,
      per_example: distribution(all),
      per_example_histogram: histogram(all),
      assistant_per_example: distribution(assistantTotals.view()),
      over_limit: overLimit,
    };
  }
  return {
    file: opened.name,
    file_type: opened.fileType,
    format: state.format,
    bytes: progress.bytes,
    examples,
    valid_examples: valid,
    trainable: issues.errorCount === 0,
    errors: issues.errors,
    warnings: issues.warnings,
    error_count: issues.errorCount,
    warning_count: issues.warningCount,
    issue_counts: issues.counts,
    messages_per_example: distribution(messageCounts.view()),
    tokens,
    split: { train: splitter.train, validation: splitter.validation, seed, validation_split: validationSplit },
    cost,
  };
}

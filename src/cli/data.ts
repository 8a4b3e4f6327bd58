// `nodeai data check|convert`: the training-data toolkit on the command line.
import { parseArgs } from 'node:util';
import {
  checkDataset,
  convertDataset,
  DatasetError,
  DEFAULT_MODEL,
  DEFAULT_SEED,
  DEFAULT_VALIDATION_SPLIT,
  MAX_VALIDATION_SPLIT,
  formatReport,
  InvalidDatasetError,
  listModels,
  type DatasetReport,
  type Epochs,
} from '../datasets/index.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `Usage:
  nodeai data check FILE [--model M] [--epochs N|auto] [--validation-split X] [--seed S] [--json]
  nodeai data convert FILE --out DIR [--validation-split X] [--seed S]

check     validate a training file (JSONL, JSON array, CSV/TSV) and report errors with line
          numbers, token statistics, the train/validation split and the training cost
convert   write it as normalized chat JSONL: DIR/train.jsonl and DIR/validation.jsonl
          (nothing is written when the file has errors)

Options:
  --model M             model to check against (default ${DEFAULT_MODEL}); one of:
                        ${listModels().map((m) => m.id).join(',\n                        ')}
  --epochs N|auto       epochs for the cost estimate (default auto)
  --validation-split X  share held out for validation, 0..${MAX_VALIDATION_SPLIT} (default ${DEFAULT_VALIDATION_SPLIT})
  --seed S              seed of the split (default ${DEFAULT_SEED})
  --json                print one JSON object instead of the readable report
  --out DIR             output folder for convert

Exit status: 0 trainable, 1 the data has errors, 2 usage error.`;

function number(name: string, raw: string | undefined, check: (n: number) => boolean, expect: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || !check(n)) throw new UsageError(`--${name} must be ${expect}, got '${raw}'`);
  return n;
}

const base = { 'validation-split': { type: 'string' }, seed: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

function parse<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${USAGE}`);
  }
}

function common(values: Record<string, string | boolean | undefined>) {
  return {
    validationSplit: number('validation-split', values['validation-split'] as string | undefined, (n) => n >= 0 && n <= MAX_VALIDATION_SPLIT, `a number from 0 to ${MAX_VALIDATION_SPLIT}`),
    seed: number('seed', values.seed as string | undefined, (n) => Number.isSafeInteger(n) && n >= 0, 'a whole number ≥ 0'),
  };
}

function oneFile(positionals: string[], command: string): string {
  if (positionals.length === 0) throw new UsageError(`'data ${command}' needs a FILE\n\n${USAGE}`);
  if (positionals.length > 1) throw new UsageError(`'data ${command}' takes one FILE, got ${positionals.length}: ${positionals.join(' ')}`);
  return positionals[0];
}

/** Problems with the call itself (missing file, unknown model, bad option) are usage errors: exit 2. */
function asUsage(err: unknown): never {
  if (DatasetError.isInstance(err) && err.code !== 'invalid_dataset' && err.code !== 'invalid_example') throw new UsageError(err.message);
  throw err;
}

async function check(args: string[]): Promise<number> {
  const { values, positionals } = parse(() =>
    parseArgs({ args, allowPositionals: true, strict: true, options: { ...base, model: { type: 'string' }, epochs: { type: 'string' }, json: { type: 'boolean' } } }),
  );
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const file = oneFile(positionals, 'check');
  let epochs: Epochs | undefined;
  if (values.epochs !== undefined && values.epochs !== 'auto') {
    epochs = number('epochs', values.epochs, (n) => Number.isInteger(n) && n >= 1 && n <= 50, "a whole number from 1 to 50 or 'auto'");
  } else if (values.epochs === 'auto') epochs = 'auto';
  let report: DatasetReport;
  try {
    report = await checkDataset(file, { model: values.model, epochs, ...common(values) });
  } catch (err) {
    asUsage(err);
  }
  console.log(values.json ? JSON.stringify(report, null, 2) : formatReport(report));
  return report.trainable ? 0 : 1;
}

async function convert(args: string[]): Promise<number> {
  const { values, positionals } = parse(() => parseArgs({ args, allowPositionals: true, strict: true, options: { ...base, out: { type: 'string' } } }));
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const file = oneFile(positionals, 'convert');
  if (!values.out) throw new UsageError(`'data convert' needs --out DIR\n\n${USAGE}`);
  try {
    const result = await convertDataset(file, { outDir: values.out, ...common(values) });
    const v = result.validation ? ` and ${result.validation.examples} to ${result.validation.path}` : ' (no validation examples at this split)';
    console.log(`Wrote ${result.train.examples} examples to ${result.train.path}${v}.`);
    return 0;
  } catch (err) {
    if (err instanceof InvalidDatasetError) {
      console.log(formatReport(err.report as DatasetReport));
      console.error(`\nNothing was written to ${values.out}: the file has errors.`);
      return 1;
    }
    asUsage(err);
  }
}

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'check') return check(rest);
  if (sub === 'convert') return convert(rest);
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(USAGE);
    return sub === undefined ? 2 : 0;
  }
  throw new UsageError(`unknown sub-command 'data ${sub}'\n\n${USAGE}`);
}

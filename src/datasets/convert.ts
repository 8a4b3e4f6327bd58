import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { checkDataset, type CheckOptions, type DatasetReport } from './check.ts';
import { InvalidDatasetError } from './errors.ts';
import { readExamples } from './read-examples.ts';
import type { DatasetSource } from './source.ts';
import { createSplitter } from './split.ts';

export interface ConvertOptions extends CheckOptions {
  /** Folder for train.jsonl and validation.jsonl; created when missing. */
  outDir: string;
}

export interface ConvertResult {
  report: DatasetReport;
  train: { path: string; examples: number };
  /** null when the split leaves no validation examples (nothing is written for it). */
  validation: { path: string; examples: number } | null;
}

async function write(out: WriteStream, text: string) {
  if (!out.write(text)) await once(out, 'drain');
}

async function close(out: WriteStream) {
  if (out.closed) return;
  out.end();
  await once(out, 'close');
}

/**
 * Writes the examples as normalized chat JSONL (`train.jsonl`, `validation.jsonl`), split as
 * `checkDataset` reports it. Checks first and writes nothing when the file has errors (throws
 * InvalidDatasetError with the report); writes to temporary files and renames them into place,
 * so a crash or a full disk never leaves a half-written training file behind.
 */
export async function convertDataset(source: DatasetSource, options: ConvertOptions): Promise<ConvertResult> {
  const report = await checkDataset(source, { countTokens: false, ...options });
  if (report.error_count > 0) throw new InvalidDatasetError(report.error_count, report);

  await mkdir(options.outDir, { recursive: true });
  const splitter = createSplitter(report.valid_examples, options);
  const finalPaths = { train: join(options.outDir, 'train.jsonl'), validation: join(options.outDir, 'validation.jsonl') };
  const tag = `.tmp-${process.pid}-${Date.now().toString(36)}`;
  const tmp = { train: finalPaths.train + tag, validation: finalPaths.validation + tag };
  const outs = { train: createWriteStream(tmp.train, { flags: 'wx' }), validation: createWriteStream(tmp.validation, { flags: 'wx' }) };
  const counts = { train: 0, validation: 0 };
  let writeError: Error | null = null;
  // A failed write (disk full) surfaces here and at the next await, never as an unhandled event.
  for (const o of [outs.train, outs.validation]) o.on('error', (e) => (writeError ??= e));
  try {
    await Promise.all([once(outs.train, 'open'), once(outs.validation, 'open')]);
    for await (const { example } of readExamples(source, { ...options, onInvalid: 'throw' })) {
      const side = splitter.next();
      counts[side]++;
      if (writeError) throw writeError;
      await write(outs[side], JSON.stringify(example) + '\n');
    }
    await Promise.all([close(outs.train), close(outs.validation)]);
    await rename(tmp.train, finalPaths.train);
    if (counts.validation > 0) await rename(tmp.validation, finalPaths.validation);
    else await Promise.all([rm(tmp.validation, { force: true }), rm(finalPaths.validation, { force: true })]); // no stale file from an earlier run
  } catch (err) {
    outs.train.destroy();
    outs.validation.destroy();
    await Promise.all([rm(tmp.train, { force: true }), rm(tmp.validation, { force: true })]);
    throw err;
  }
  return {
    report,
    train: { path: finalPaths.train, examples: counts.train },
    validation: counts.validation > 0 ? { path: finalPaths.validation, examples: counts.validation } : null,
  };
}

import type { ReadOptions } from './check.ts';
import { InvalidExampleError } from './errors.ts';
import type { DatasetIssue, IssueSink } from './issues.ts';
import { readRecords } from './records.ts';
import { openSource, type DatasetSource } from './source.ts';
import type { DataFormat, Example } from './types.ts';
import { newFormatState, validateRecord } from './validate.ts';

export interface ExampleRecord {
  /** 1-based line where the example starts in the file. */
  line: number;
  /** The file's format; `completion` examples arrive already converted to chat. */
  format: DataFormat;
  example: Example;
}

export interface ReadExamplesOptions extends ReadOptions {
  /** 'throw' (default): stop with an InvalidExampleError at the first error. 'skip': leave bad examples out. */
  onInvalid?: 'throw' | 'skip';
  /** Receives every issue, warnings included. */
  onIssue?: IssueSink;
}

/**
 * The valid examples of a file, normalized, one at a time, with their line numbers: what the
 * trainer and the providers consume. Streams; never holds the file.
 */
export async function* readExamples(source: DatasetSource, options: ReadExamplesOptions = {}): AsyncGenerator<ExampleRecord> {
  const opened = await openSource(source, options.fileType);
  const state = newFormatState();
  const strict = (options.onInvalid ?? 'throw') === 'throw';
  let firstError: DatasetIssue | null = null;
  const sink: IssueSink = (i) => {
    options.onIssue?.(i);
    if (i.severity === 'error' && !firstError) firstError = i;
  };
  for await (const batch of readRecords(opened.chunks, opened.fileType, { maxLineBytes: options.maxLineBytes, csv: options.csv })) {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
    for (const item of batch) {
      firstError = null;
      const ok = item.issue ? (sink(item.issue), null) : validateRecord(item.value, item.line, state, sink);
      if (firstError && strict) throw new InvalidExampleError(firstError);
      if (ok) yield { line: item.line, format: ok.format, example: ok.example };
    }
  }
}

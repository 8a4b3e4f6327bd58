// Typed errors in the style of the Vercel AI SDK provider packages: one base class with a stable
// `code`, and an `isInstance` check that works across duplicated copies of this module (a symbol
// marker instead of `instanceof`, which breaks when two versions of the package are loaded).
import { NodeAIError, statusOf, type HttpStatus } from '../nodeai-error.ts';

const marker = Symbol.for('nodeai.datasets.error');

export type DatasetErrorCode =
  | 'file_not_found'
  | 'read_failed'
  | 'invalid_argument'
  | 'unknown_model'
  | 'invalid_dataset'
  | 'invalid_example';

// A data file the server cannot read is its own failure; every other dataset error is the request's.
const STATUS: Record<string, HttpStatus> = { file_not_found: 404, read_failed: 500 };

export class DatasetError extends NodeAIError {
  readonly [marker] = true;
  declare readonly code: DatasetErrorCode;
  /** What the user can do about it. */
  readonly hint: string | undefined;

  constructor(code: DatasetErrorCode, message: string, options: { hint?: string; cause?: unknown; param?: string } = {}) {
    super(code, options.hint ? `${message}. ${options.hint}` : message, { status: statusOf(code, STATUS, 400), param: options.param ?? null, cause: options.cause });
    this.name = 'DatasetError';
    this.hint = options.hint;
  }

  static override isInstance(error: unknown): error is DatasetError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[marker] === true;
  }
}

/** The data file cannot be opened or read (missing, a directory, permission denied, I/O error). */
export class DatasetReadError extends DatasetError {
  readonly path: string | undefined;
  constructor(code: 'file_not_found' | 'read_failed', message: string, options: { path?: string; hint?: string; cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'DatasetReadError';
    this.path = options.path;
  }
}

/** An option passed to a dataset function is out of range (a split of 1.5, a negative seed…). */
export class InvalidArgumentError extends DatasetError {
  readonly argument: string;
  constructor(argument: string, message: string, hint?: string) {
    super('invalid_argument', message, { hint, param: argument });
    this.name = 'InvalidArgumentError';
    this.argument = argument;
  }
}

/** The model id is not in the catalogue. */
export class UnknownModelError extends DatasetError {
  readonly modelId: string;
  readonly knownModels: string[];
  constructor(modelId: string, knownModels: string[]) {
    super('unknown_model', `Unknown model '${modelId}'`, { hint: `Use one of: ${knownModels.join(', ')}` });
    this.name = 'UnknownModelError';
    this.modelId = modelId;
    this.knownModels = knownModels;
  }
}

/** One example failed validation while reading with `onInvalid: 'throw'`. */
export class InvalidExampleError extends DatasetError {
  readonly line: number | null;
  readonly issueCode: string;
  readonly path: string | null;
  constructor(issue: { line: number | null; code: string; path: string | null; message: string; hint: string }) {
    const where = issue.line === null ? '' : `line ${issue.line}: `;
    super('invalid_example', `${where}${issue.message}`, { hint: issue.hint });
    this.name = 'InvalidExampleError';
    this.line = issue.line;
    this.issueCode = issue.code;
    this.path = issue.path;
  }
}

/** The dataset has errors, so nothing was written or trained; `report` lists them. */
export class InvalidDatasetError<R = unknown> extends DatasetError {
  readonly report: R;
  constructor(errorCount: number, report: R) {
    super('invalid_dataset', `The dataset has ${errorCount} error${errorCount === 1 ? '' : 's'}`, {
      hint: "Run 'nodeai data check FILE' to see them, fix the file, and try again",
    });
    this.name = 'InvalidDatasetError';
    this.report = report;
  }
}

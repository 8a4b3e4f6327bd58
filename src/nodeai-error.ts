// The one error base every layer's errors extend (imported by every layer; it imports nothing).
// Like the Vercel AI SDK's AISDKError: a stable `code` callers branch on, the HTTP `status` the
// server answers with — decided where the error is made, not guessed from its name later — and a
// marker symbol, so `NodeAIError.isInstance` holds even across two loaded copies of this module.
const marker = Symbol.for('nodeai.error');

/** The statuses the server answers with. */
export type HttpStatus = 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 422 | 429 | 500 | 501 | 502 | 503;

export interface NodeAIErrorOptions {
  /** Default 500: a failure the caller cannot fix by asking differently. */
  status?: HttpStatus;
  /** The request field at fault, e.g. `hyperparameters.n_epochs`. */
  param?: string | null;
  /** Structured detail for API clients (a workflow's issues). */
  details?: unknown;
  cause?: unknown;
}

export class NodeAIError extends Error {
  readonly [marker] = true;
  readonly code: string;
  readonly status: HttpStatus;
  readonly param: string | null;
  readonly details: unknown;

  constructor(code: string, message: string, options: NodeAIErrorOptions = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'NodeAIError';
    this.code = code;
    this.status = options.status ?? 500;
    this.param = options.param ?? null;
    this.details = options.details;
  }

  static isInstance(error: unknown): error is NodeAIError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[marker] === true;
  }
}

/** A status from a table of codes; codes not in it are the default's (500 unless given). */
export function statusOf(code: string, table: Readonly<Record<string, HttpStatus>>, fallback: HttpStatus = 500): HttpStatus {
  return Object.hasOwn(table, code) ? table[code] : fallback;
}

import { ZodError } from 'zod';
import { DatasetError } from '../datasets/index.ts';
import { EngineError, WorkflowValidationError } from '../engine/index.ts';
import { ProviderError } from '../providers/spec.ts';
import { InvalidInputError, StoreError } from '../store/index.ts';

/** OpenAI's error body; every failure the server returns has this shape, on /api/v1 and /v1 alike. */
export interface ErrorBody {
  error: { code: string; message: string; param: string | null; type: string; details?: unknown };
}

export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 422 | 429 | 500 | 501 | 502 | 503;

/** A failure with its HTTP status decided; anything else thrown by a route becomes one in `toApiError`. */
export class ApiError extends Error {
  constructor(
    readonly status: ErrorStatus,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): ErrorBody {
    const error: ErrorBody['error'] = { code: this.code, message: this.message, param: this.param, type: errorType(this.status) };
    if (this.details !== undefined) error.details = this.details;
    return { error };
  }
}

// OpenAI's `type` vocabulary, so SDKs that branch on it behave as they do against OpenAI.
function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export const notFound = (what: string, id: string, hint = '') =>
  new ApiError(404, `${what.replace(/ /g, '_')}_not_found`, `No ${what} with ID ${JSON.stringify(id.slice(0, 80))}.${hint ? ' ' + hint : ''}`, 'id');

export const badRequest = (code: string, message: string, param: string | null = null) => new ApiError(400, code, message, param);

/** `a.b[2].c` from zod's path, the way a JSON body's author reads it. */
export function formatParam(path: readonly PropertyKey[]): string | null {
  if (path.length === 0) return null;
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

const STORE_STATUS: Record<string, ErrorStatus> = {
  invalid_file_id: 404,
  file_not_found: 404,
  secret_not_found: 404,
  file_too_large: 413,
  invalid_input: 400,
  upload_failed: 500,
  file_body_missing: 500,
  secret_decrypt_failed: 500,
  secret_key_invalid: 500,
};

const ENGINE_STATUS: Record<string, ErrorStatus> = {
  run_not_found: 404,
  workflow_invalid: 400,
};

/**
 * The one place a thrown value becomes a status and an error body. Unknown errors are 500 with
 * a generic message: their text may hold paths or secrets, so it goes to the log only.
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ZodError) {
    const first = err.issues[0];
    const param = first ? formatParam(first.path) : null;
    const message = err.issues
      .slice(0, 5)
      .map((i) => (i.path.length ? `${formatParam(i.path)}: ${i.message}` : i.message))
      .join('; ');
    return new ApiError(400, 'invalid_request', `Invalid request body: ${message}.`, param);
  }
  if (err instanceof StoreError) {
    const param = err instanceof InvalidInputError ? err.field : err.code === 'invalid_file_id' || err.code === 'file_not_found' ? 'file_id' : null;
    return new ApiError(STORE_STATUS[err.code] ?? 500, err.code, err.message, param);
  }
  if (err instanceof WorkflowValidationError) {
    const first = err.issues[0];
    return new ApiError(400, err.code, err.message, first?.path ?? first?.nodeId ?? null, err.issues);
  }
  if (err instanceof EngineError) {
    const status = ENGINE_STATUS[err.code] ?? (err.name === 'RunStateError' ? 409 : 500);
    return new ApiError(status, err.code, err.message);
  }
  if (DatasetError.isInstance(err)) {
    const status: ErrorStatus = err.code === 'read_failed' ? 500 : err.code === 'file_not_found' ? 404 : 400;
    const param = (err as { argument?: string }).argument ?? null;
    return new ApiError(status, err.code, err.message, param);
  }
  if (err instanceof ProviderError) {
    const status = (err.status && [400, 401, 403, 404, 409, 429, 501, 502, 503].includes(err.status) ? err.status : 502) as ErrorStatus;
    return new ApiError(status, err.code, err.message);
  }
  if (err instanceof Error && err.name === 'InferenceError') {
    const code = String((err as { code?: unknown }).code);
    return code === 'BAD_REQUEST' ? new ApiError(400, 'invalid_request', err.message) : new ApiError(500, code.toLowerCase(), err.message);
  }
  if (isTypedError(err)) {
    // Typed errors of layers landing later (jobs, registry) carry a stable code and an optional status.
    const status = (typeof err.status === 'number' && err.status >= 400 && err.status < 600 ? err.status : guessStatus(err.code)) as ErrorStatus;
    return new ApiError(status, err.code, err.message, typeof err.param === 'string' ? err.param : null);
  }
  return new ApiError(500, 'internal_error', 'The server failed to handle this request. See the server log for details.');
}

function isTypedError(err: unknown): err is Error & { code: string; status?: unknown; param?: unknown } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' && /^[a-z][a-z0-9_]*$/.test((err as unknown as { code: string }).code);
}

// Codes of the jobs layer whose status the name does not tell. A finished job that cannot be
// cancelled is 400, as OpenAI answers, not 409: OpenAI's SDKs retry 409s.
const CODE_STATUS: Record<string, number> = { job_state: 400, model_name_taken: 409, job_cancelled: 400 };

function guessStatus(code: string): number {
  if (CODE_STATUS[code]) return CODE_STATUS[code];
  if (code.endsWith('_not_found')) return 404;
  if (code.startsWith('invalid_') || code.endsWith('_invalid')) return 400;
  if (code.endsWith('_conflict') || code.startsWith('job_not_')) return 409;
  return 500;
}

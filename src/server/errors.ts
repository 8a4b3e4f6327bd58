import { ZodError } from 'zod';
import { NodeAIError, type HttpStatus } from '../nodeai-error.ts';

/** OpenAI's error body; every failure the server returns has this shape, on /api/v1 and /v1 alike. */
export interface ErrorBody {
  error: { code: string; message: string; param: string | null; type: string; details?: unknown };
}

export type ErrorStatus = HttpStatus;

/** A failure the server's own routes raise; any other error becomes one in `toApiError`. */
export class ApiError extends NodeAIError {
  constructor(status: ErrorStatus, code: string, message: string, param: string | null = null, details?: unknown) {
    super(code, message, { status, param, details });
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

/**
 * The one place a thrown value becomes an error body. Every NodeAI error carries its code and
 * status from where it was made; codes are answered in lower case, as OpenAI's are. Unknown
 * errors are 500 with a generic message: their text may hold paths or secrets, so it goes to
 * the log only.
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
  if (NodeAIError.isInstance(err)) return new ApiError(err.status, err.code.toLowerCase(), err.message, err.param, err.details);
  return new ApiError(500, 'internal_error', 'The server failed to handle this request. See the server log for details.');
}

// Errors met while naming, downloading or reading in place a model: each names the model and says
// what to do, and carries a stable code for the API and the CLI.
import { NodeAIError, type HttpStatus } from '../nodeai-error.ts';

export type ModelSourceErrorCode =
  /** The reference text is malformed. */
  | 'invalid_model_ref'
  /** The hub has no such repository or file. */
  | 'hub_not_found'
  /** The repository has no file for the quant tag. */
  | 'quant_not_found'
  /** The hub refused access: gated or private repository, missing or wrong HF_TOKEN. */
  | 'hub_unauthorized'
  /** HTTP 429 from the hub. */
  | 'hub_rate_limited'
  /** Any other hub or network failure. */
  | 'hub_unavailable'
  /** The downloaded bytes do not match the hub's size or checksum. */
  | 'checksum_mismatch'
  /** The file is not a GGUF (or is a truncated one). */
  | 'not_gguf'
  /** A GGUF the pinned llama.cpp cannot load (architecture or tensor type), or an adapter. */
  | 'unsupported_model'
  /** `ollama:` model not in any Ollama store. */
  | 'ollama_not_found'
  /** The disk filled while downloading. */
  | 'disk_full'
  /** The download was stopped by its AbortSignal; the partial file stays for a resume. */
  | 'aborted'
  /** Not downloaded yet, and downloading was not allowed. */
  | 'not_downloaded';

/**
 * The HTTP status a server answers with: the hub's
 * refusals are the upstream's (502), not this server's own 401; a rate limit stays 429.
 */
const STATUS: Record<ModelSourceErrorCode, HttpStatus> = {
  invalid_model_ref: 400,
  hub_not_found: 404,
  quant_not_found: 404,
  ollama_not_found: 404,
  not_downloaded: 404,
  hub_unauthorized: 502,
  hub_rate_limited: 429,
  hub_unavailable: 502,
  checksum_mismatch: 502,
  not_gguf: 422,
  unsupported_model: 422,
  disk_full: 503,
  aborted: 503,
};

export class ModelSourceError extends NodeAIError {
  override readonly name = 'ModelSourceError';
  constructor(
    override readonly code: ModelSourceErrorCode,
    /** The model reference as the user wrote it (or its canonical form). */
    readonly model: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, { status: STATUS[code], cause: options?.cause });
  }
}

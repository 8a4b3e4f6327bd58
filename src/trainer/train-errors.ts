// Typed errors of the trainer core. `code` is stable: callers (the child-process runner, the CLI,
// the job tracker) switch on it; `message` says what was wrong, where, and what to do.
import { NodeAIError } from '../nodeai-error.ts';

export type TrainerErrorCode =
  | 'GGML_LOAD_FAILED'
  | 'GGML_COMPUTE_FAILED'
  /** The device asked for (CUDA) cannot be used here; the message names what is missing. */
  | 'DEVICE_UNAVAILABLE'
  | 'UNSUPPORTED_CONFIG'
  | 'MISSING_TENSOR'
  | 'BAD_TENSOR_SHAPE'
  | 'EMPTY_DATASET'
  | 'SEQUENCE_TOO_LONG'
  | 'BAD_SEQUENCE'
  | 'BAD_OPTION'
  | 'TRAINING_FINISHED'
  | 'TRAINER_DISPOSED'
  | 'CHECKPOINT_CORRUPT'
  | 'CHECKPOINT_MISMATCH';

export class TrainerError extends NodeAIError {
  override readonly name = 'TrainerError';
  constructor(
    override readonly code: TrainerErrorCode,
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(code, message, { details });
  }

  /** Where the failure is (the split and example index…), when the trainer knows. */
  declare readonly details: Record<string, unknown> | undefined;
}

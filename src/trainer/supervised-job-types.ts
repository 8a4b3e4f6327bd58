// The contract between the trainer's supervised child process and the layers that run jobs
// (the local provider, the job queue, the CLI). Everything a job needs lives in `jobDir`, so a
// job survives the death of the process that started it: a new supervisor started on the same
// directory resumes from the newest checkpoint there.

import type { EvaluationReport } from './evaluation-report.ts';
import type { TrainingDevice } from './training-device.ts';

export interface LocalFineTuneSpec {
  /** Directory owned by this job: checkpoints, metrics.jsonl, job.json and the outputs go here. */
  jobDir: string;
  /** Normalized chat JSONL (one `{messages}` per line), as `nodeai data convert` writes it. */
  trainingFile: string;
  validationFile?: string | null;
  /** 'nodeai-tiny' or a path to a GGUF base model. */
  baseModel: string;
  epochs?: number | 'auto';
  batchSize?: number | 'auto';
  learningRate?: number | 'auto';
  /** Instead of learningRate: a multiple of the base model's automatic rate (OpenAI's learning_rate_multiplier). */
  learningRateMultiplier?: number;
  /** LoRA rank; absent or 0 means full fine-tuning. */
  loraRank?: number;
  loraAlpha?: number;
  seed?: number;
  threads?: number;
  /** Where to train: 'auto' (default: CUDA when usable, else the CPU), 'cpu' or 'cuda' (refused with device_unavailable when it cannot be used). */
  device?: TrainingDevice;
  /** Run validation every N optimizer steps (and always at each epoch end). */
  evalEvery?: number;
  /**
   * Stop when the validation loss at an epoch's end has not improved for this many epochs, and
   * keep the model of the best one. Needs a validation file; absent means train every epoch.
   */
  earlyStoppingPatience?: number;
  /** Also write a checkpoint when this many seconds passed since the last one. */
  checkpointEverySeconds?: number;
  /**
   * After training, evaluate the base and the fine-tuned model on (at most `maxExamples` of) the
   * validation file, under these names; the report comes back in the result and evaluation.json.
   */
  evaluate?: { maxExamples: number; baseName: string; modelName: string };
  /** Name of the output model file stem, e.g. `ft-nodeai-tiny-support-abc123`. */
  outputName?: string;
  /**
   * The job queue's claim (its fencing token) that runs this job. The supervisor records it in
   * the job directory, unless a newer claim is recorded there already (then it does not start);
   * the trainer writes nothing once the directory names a newer claim — its holder lost the job.
   */
  fencingToken?: number;
}

/** One structured event, as written to `metrics.jsonl` and sent to the parent. */
export type LocalFineTuneEvent =
  | { type: 'status'; status: 'validating_files' | 'running' | 'succeeded' | 'failed' | 'cancelled'; message: string; time: number }
  | { type: 'message'; level: 'info' | 'warn' | 'error'; message: string; time: number }
  | {
      type: 'metrics';
      time: number;
      step: number;
      total_steps: number;
      epoch: number;
      total_epochs: number;
      train_loss?: number;
      train_mean_token_accuracy?: number;
      valid_loss?: number;
      valid_mean_token_accuracy?: number;
      tokens_per_second?: number;
      eta_seconds?: number;
      learning_rate?: number;
      /** Global L2 norm of the step's gradients, before clipping to the trainer's max (1). */
      grad_norm?: number;
      trained_tokens?: number;
    }
  | { type: 'checkpoint'; time: number; step: number; epoch: number; path: string; bytes: number };

export interface LocalFineTuneResult {
  status: 'succeeded' | 'failed' | 'cancelled';
  /** The merged/full model GGUF (always written on success). */
  modelPath?: string;
  /** The LoRA adapter GGUF, when trained with LoRA. */
  adapterPath?: string;
  trainedTokens: number;
  steps: number;
  finalMetrics?: { train_loss?: number; valid_loss?: number; train_mean_token_accuracy?: number; valid_mean_token_accuracy?: number };
  /** `file` and `line` name the data at fault when there is one (e.g. an example too long for the context). */
  error?: { code: string; message: string; file?: string; line?: number };
  /** True when this run continued from a checkpoint found in jobDir. */
  resumed: boolean;
  /** The automatic evaluation (spec.evaluate), when it ran and finished. */
  evaluation?: EvaluationReport;
}

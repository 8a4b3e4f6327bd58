// The 'auto' hyperparameters: one rule each for epochs, batch size, learning rate and LoRA rank,
// used alike by the cost estimate (cost.ts), the fine-tune service and the trainer, so the number
// a user is shown before training is the number the trainer uses.

// OpenAI's 'auto' epochs, as its cookbook computes them: aim for 3 passes, but at least ~100
// example-passes for small sets and at most ~25,000 for large ones, within 1..25 epochs.
const TARGET_EPOCHS = 3;
const MIN_TARGET_EXAMPLES = 100;
const MAX_TARGET_EXAMPLES = 25_000;
const MIN_DEFAULT_EPOCHS = 1;
const MAX_DEFAULT_EPOCHS = 25;

export function autoEpochs(examples: number): number {
  if (examples <= 0) return TARGET_EPOCHS;
  if (examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES) return Math.min(MAX_DEFAULT_EPOCHS, Math.ceil(MIN_TARGET_EXAMPLES / examples));
  if (examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES) return Math.max(MIN_DEFAULT_EPOCHS, Math.floor(MAX_TARGET_EXAMPLES / examples));
  return TARGET_EPOCHS;
}

/** The sizes of a model that decide how many rows fit a step's memory. */
export interface ModelShape {
  vocabSize: number;
  embeddingLength: number;
  blockCount: number;
}

/** Up to 8 rows for small data (≈ n/6, a power of two), fewer when the logits would be large. */
export function autoBatchSize(examples: number, shape: ModelShape, seqLen: number): number {
  let b = 1;
  while (b * 2 <= Math.min(8, examples / 6)) b *= 2;
  // Dense labels and logits (+ their gradients) cost ~6 copies of vocab × positions floats.
  const perRow = seqLen * (6 * shape.vocabSize + 40 * shape.embeddingLength * shape.blockCount) * 4;
  while (b > 1 && b * perRow > 2 * 1024 ** 3) b /= 2;
  return b;
}

/** Models up to this size (nodeai-tiny's scale) are trained (almost) from scratch. */
const SMALL_MODEL_PARAMETERS = 10e6;

/**
 * The peak learning rate. Small models trained (almost) from scratch need ~3e-3 (a 0.9M-parameter
 * byte model learned 24 Q→A pairs at 3e-3, half of them at 1e-3); pretrained bases want the usual
 * fine-tuning range, LoRA about 10× more than full fine-tuning.
 */
export function autoLearningRate(parameters: number, lora: boolean): number {
  if (parameters <= SMALL_MODEL_PARAMETERS) return 3e-3;
  if (lora) return parameters <= 1e9 ? 1e-3 : 2e-4;
  return parameters <= 100e6 ? 3e-4 : parameters <= 1e9 ? 5e-5 : 2e-5;
}

/** `lora_rank` 0 trains every weight (full fine-tuning); any other rank trains an adapter. */
export const FULL_FINE_TUNING = 0;

/** The LoRA rank when none is given: 8 for a base of real size; a small one trains every weight. */
export function autoLoraRank(parameters: number): number {
  return parameters > SMALL_MODEL_PARAMETERS ? 8 : FULL_FINE_TUNING;
}

/** The rank of the adapter to train, or undefined for full fine-tuning. */
export function loraRankOf(rank: number | undefined): number | undefined {
  return rank === undefined || rank === FULL_FINE_TUNING ? undefined : rank;
}

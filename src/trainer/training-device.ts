// The devices a fine-tuning job may ask for. Kept apart from ggml/device.ts (which loads native
// libraries) so the request's schema can name them without loading ggml.
export const TRAINING_DEVICES = ['auto', 'cpu', 'cuda'] as const;
/** What a job asks for: `auto` trains on CUDA when a CUDA device can be used, else on the CPU. */
export type TrainingDevice = (typeof TRAINING_DEVICES)[number];

/**
 * Who computes the large matmuls of a CPU run: `ggml` (ggml-cpu's kernels), `blas` (oneDNN or OpenBLAS through
 * ggml's BLAS backend, built by scripts/build-ggml-blas.sh) or `auto`.
 */
export const TRAINING_MATMULS = ['auto', 'ggml', 'blas'] as const;
export type TrainingMatmul = (typeof TRAINING_MATMULS)[number];

/** How a LoRA run holds a float32 frozen base: `f32`, `bf16`, or `auto` (trainer/train.ts's resolveFrozenBase). */
export const FROZEN_BASE_CHOICES = ['auto', 'f32', 'bf16'] as const;

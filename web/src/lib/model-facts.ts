// Short lines about a model: its file size and how it was trained (the Models screen), the size of
// a catalogue model's file (the Fine-Tune node's base-model choice).
import type { ApiModel, CatalogModel } from '../api.ts';

const UNITS = ['bytes', 'KB', 'MB', 'GB', 'TB'];

/** A file size in decimal units as disk tools show them: 812 bytes, 4.2 MB, 1.6 GB. */
export function fileSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${UNITS[unit]}`;
}

/**
 * A catalogue file's size as the base-model choice shows it, "≈" marking one computed by llama.cpp's
 * quantizer from the model's shapes (the hub gave none), with the tooltip that says so.
 */
export function catalogFileSize(file: NonNullable<CatalogModel['files']>[number]): { text: string; title: string } {
  const computed = file.bytes_source === 'computed';
  return {
    text: `${computed ? '≈' : ''}${fileSize(file.bytes)} ${file.quant} file`,
    title: computed ? "Computed by llama.cpp's quantizer from the model's tensor shapes; the hub gave no size" : "The hub's size of this file",
  };
}

/**
 * The job's hyperparameters in words: "3 epochs · batch 2 · learning rate 0.001 · LoRA rank 4";
 * "auto" where the job let the trainer choose; null when the job is gone.
 */
export function hyperparameterLine(h: ApiModel['hyperparameters']): string | null {
  if (!h) return null;
  const parts = [`${h.n_epochs} epoch${h.n_epochs === 1 ? '' : 's'}`, `batch ${h.batch_size}`];
  // The local trainer's absolute rate wins over OpenAI's multiplier, as in training.
  if (h.learning_rate !== undefined) parts.push(`learning rate ${h.learning_rate}`);
  else parts.push(h.learning_rate_multiplier === 'auto' ? 'learning rate auto' : `learning rate ×${h.learning_rate_multiplier}`);
  if (h.lora_rank !== undefined) parts.push(`LoRA rank ${h.lora_rank}`);
  return parts.join(' · ');
}

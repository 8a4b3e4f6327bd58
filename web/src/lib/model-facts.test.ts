import { describe, expect, it } from 'vitest';
import { catalogFileSize, fileSize, hyperparameterLine } from './model-facts.ts';

describe('model facts', () => {
  it('writes file sizes in decimal units', () => {
    expect(fileSize(812)).toBe('812 bytes');
    expect(fileSize(4_200_000)).toBe('4.2 MB');
    expect(fileSize(1_600_000_000)).toBe('1.6 GB');
    expect(fileSize(531_000)).toBe('531 KB');
  });

  it('marks a catalogue file size computed by llama.cpp\'s quantizer with ≈ and says so in its tooltip', () => {
    const uri = 'hf:bartowski/SmolLM2-135M-Instruct-GGUF:Q8_0';
    expect(catalogFileSize({ quant: 'Q8_0', bytes: 144_112_736, bytes_source: 'computed', uri })).toEqual({ text: '≈144 MB Q8_0 file', title: expect.stringMatching(/llama\.cpp's quantizer/) });
    expect(catalogFileSize({ quant: 'Q8_0', bytes: 386_000_000, bytes_source: 'hub', uri })).toEqual({ text: '386 MB Q8_0 file', title: "The hub's size of this file" });
  });

  it('writes the hyperparameters in words, with auto where the trainer chose', () => {
    expect(hyperparameterLine({ n_epochs: 3, batch_size: 2, learning_rate_multiplier: 'auto', learning_rate: 0.001, lora_rank: 4 })).toBe('3 epochs · batch 2 · learning rate 0.001 · LoRA rank 4');
    expect(hyperparameterLine({ n_epochs: 1, batch_size: 'auto', learning_rate_multiplier: 2 })).toBe('1 epoch · batch auto · learning rate ×2');
    expect(hyperparameterLine({ n_epochs: 'auto', batch_size: 'auto', learning_rate_multiplier: 'auto' })).toBe('auto epochs · batch auto · learning rate auto');
    expect(hyperparameterLine(null)).toBeNull();
  });
});

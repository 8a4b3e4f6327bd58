import { describe, expect, it } from 'vitest';
import { fieldLabel, visibleFields } from './fields.ts';

const FINETUNE = ['provider', 'base_model', 'training_file_id', 'validation_split', 'epochs', 'batch_size', 'learning_rate', 'learning_rate_multiplier', 'early_stopping_patience', 'lora_rank', 'model_name', 'seed', 'device', 'wait_for_completion', 'api_key', 'base_url'];

describe('fields', () => {
  it('labels fields in words', () => {
    expect(fieldLabel('lora_rank')).toBe('LoRA rank');
    expect(fieldLabel('api_key')).toBe('API key');
    expect(fieldLabel('base_url')).toBe('Base URL');
    expect(fieldLabel('some_new_id')).toBe('Some new ID');
  });

  it('shows local-only fields for the local provider and OpenAI-only ones for OpenAI', () => {
    const local = visibleFields('finetune', FINETUNE, {});
    expect([...local.basic, ...local.advanced]).toContain('lora_rank');
    expect([...local.basic, ...local.advanced]).not.toContain('api_key');
    expect([...local.basic, ...local.advanced]).not.toContain('base_url');
    const openai = visibleFields('finetune', FINETUNE, { provider: 'openai' });
    expect(openai.basic).toContain('api_key');
    expect(openai.advanced).toContain('base_url');
    expect([...openai.basic, ...openai.advanced]).not.toContain('lora_rank');
    // The local trainer's device (CPU or CUDA) means nothing to a remote provider.
    expect(local.advanced).toContain('device');
    expect([...openai.basic, ...openai.advanced]).not.toContain('device');
    expect(local.basic).toEqual(['provider', 'base_model', 'validation_split', 'epochs', 'model_name']);
    // One learning-rate field each: an absolute rate for the local trainer, OpenAI's multiplier for OpenAI.
    expect(local.advanced).toContain('learning_rate');
    expect(local.advanced).not.toContain('learning_rate_multiplier');
    expect(openai.advanced).toContain('learning_rate_multiplier');
    expect(openai.advanced).not.toContain('learning_rate');
  });

  it('shows the evaluation after training for the local trainer only, among the advanced settings', () => {
    const keys = [...FINETUNE, 'evaluate'];
    expect(visibleFields('finetune', keys, {}).advanced).toContain('evaluate');
    const openai = visibleFields('finetune', keys, { provider: 'openai' });
    expect([...openai.basic, ...openai.advanced]).not.toContain('evaluate');
    expect(fieldLabel('evaluate')).toBe('Evaluate base vs fine-tuned after training');
  });

  it('hides CLI-only fields', () => {
    const f = visibleFields('file_loader', ['file_id', 'path', 'file_type', 'max_examples'], {});
    expect(f).toEqual({ basic: ['file_id'], advanced: ['file_type', 'max_examples'] });
  });

  it('shows the chat model or the fine-tuned model, whichever is used', () => {
    const keys = ['provider', 'model', 'use_finetuned_model', 'finetuned_model', 'prompt'];
    expect(visibleFields('chat', keys, {}).basic).toEqual(['provider', 'model', 'use_finetuned_model', 'prompt']);
    expect(visibleFields('chat', keys, { use_finetuned_model: true }).basic).toEqual(['provider', 'use_finetuned_model', 'finetuned_model', 'prompt']);
  });
});

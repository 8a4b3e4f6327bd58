import { describe, expect, it } from 'vitest';
import { DatasetError, UnknownModelError } from './errors.ts';
import { DEFAULT_MODEL, findModel, getModel, listModels, modelStatus, registerModel } from './models.ts';

describe('model catalogue', () => {
  it('has the local default and the OpenAI fine-tunable snapshots', () => {
    expect(DEFAULT_MODEL).toBe('nodeai-tiny');
    expect(getModel('nodeai-tiny')).toMatchObject({ provider: 'local', tokenLimit: 256, trainingPricePer1M: 0, tokenizer: 'bytes' });
    expect(listModels().map((m) => m.id)).toEqual(
      expect.arrayContaining(['gpt-4o-mini-2024-07-18', 'gpt-4o-2024-08-06', 'gpt-4.1-2025-04-14', 'gpt-4.1-mini-2025-04-14', 'gpt-4.1-nano-2025-04-14', 'gpt-3.5-turbo-0125']),
    );
    expect(getModel('gpt-4o-2024-08-06')).toMatchObject({ tokenLimit: 65_536, trainingPricePer1M: 25, tokenizer: 'o200k_base', shutdown: '2027-01-14', newJobsEnd: '2027-01-06' });
    expect(getModel('gpt-3.5-turbo-0125')).toMatchObject({ tokenLimit: 16_385, trainingPricePer1M: 8, tokenizer: 'cl100k_base' });
  });

  it('resolves aliases and fine-tuned model names to their base', () => {
    expect(findModel('gpt-4o-mini')?.id).toBe('gpt-4o-mini-2024-07-18');
    expect(findModel('ft:gpt-4.1-mini-2025-04-14:acme::abc123')?.id).toBe('gpt-4.1-mini-2025-04-14');
    expect(findModel('claude-3-haiku')).toBeUndefined();
  });

  it('throws a typed error listing the known models', () => {
    try {
      getModel('gpt-5');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(UnknownModelError);
      expect(DatasetError.isInstance(err)).toBe(true);
      expect(err).toMatchObject({ code: 'unknown_model', modelId: 'gpt-5' });
      expect((err as Error).message).toMatch(/^Unknown model 'gpt-5'\. Use one of: nodeai-tiny, gpt-4o-mini-2024-07-18/);
    }
  });

  it('knows when OpenAI stops taking jobs and when snapshots shut down', () => {
    const m = getModel('gpt-4o-mini');
    expect(modelStatus(m, new Date('2027-01-05T23:00:00Z'))).toEqual({ closed: false, shutDown: false });
    expect(modelStatus(m, new Date('2027-01-06T00:00:00Z'))).toEqual({ closed: true, shutDown: false });
    expect(modelStatus(m, new Date('2027-01-14T00:00:00Z'))).toEqual({ closed: true, shutDown: true });
    expect(modelStatus(getModel('nodeai-tiny'), new Date('2030-01-01'))).toEqual({ closed: false, shutDown: false });
  });

  it('lets the trainer register a local model', () => {
    registerModel({ id: 'test-local-512', provider: 'local', aliases: [], tokenLimit: 512, trainingPricePer1M: 0, tokenizer: 'bytes', methods: ['supervised'], source: 'test' });
    expect(getModel('test-local-512').tokenLimit).toBe(512);
  });
});

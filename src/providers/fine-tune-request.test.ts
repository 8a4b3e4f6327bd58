import { describe, expect, it } from 'vitest';
import { ZodError } from 'zod';
import { DEVICE_METADATA_KEY, deviceOf, EVALUATE_METADATA_KEY, evaluateExamplesOf, evaluateMetadata, FineTuneRequest, fromOpenAIJobBody, OpenAIJobBody, OUTPUT_DIR_METADATA_KEY, parseFineTuneRequest } from './fine-tune-request.ts';

const data = { kind: 'prepared' as const, training_file: 'file-a' };

describe('FineTuneRequest', () => {
  it('fills the defaults: local, auto hyperparameters, supervised, split 0.2', () => {
    expect(parseFineTuneRequest({ base_model: 'nodeai-tiny', data })).toMatchObject({
      provider: 'local',
      validation_split: 0.2,
      hyperparameters: { n_epochs: 'auto', batch_size: 'auto', learning_rate: 'auto', learning_rate_multiplier: 'auto' },
      method: { type: 'supervised' },
    });
  });

  it("refuses what only the local trainer does for OpenAI, naming the field", () => {
    const refused = (input: object) => {
      try {
        parseFineTuneRequest({ provider: 'openai', base_model: 'gpt-4o-mini', data, ...input });
      } catch (err) {
        return (err as ZodError).issues.map((i) => `${i.path.join('.')}: ${i.message}`);
      }
      return [];
    };
    expect(refused({ early_stopping_patience: 2 })).toEqual(['early_stopping_patience: early_stopping_patience is for the local trainer; remove it, or use provider "local"']);
    expect(refused({ method: { lora_rank: 4 } })[0]).toMatch(/^method\.lora_rank: lora_rank is for the local trainer/);
    expect(refused({ hyperparameters: { learning_rate: 1e-4 } })[0]).toMatch(/^hyperparameters\.learning_rate: learning_rate \(an absolute rate\) is for the local trainer/);
    expect(refused({ output_dir: '/tmp/x' })[0]).toMatch(/^output_dir/);
    expect(refused({ device: { type: 'cuda' } })).toEqual(['device.type: device is for the local trainer; remove it, or use provider "local"']);
    expect(refused({ device: { type: 'auto' } })).toEqual([]);
    // The evaluation after training runs on this machine; off is what a remote job has anyway.
    expect(refused({ evaluate: true })[0]).toMatch(/^evaluate: the evaluation after training runs for the local trainer only; .*Evaluate node/);
    expect(refused({ evaluate: false })).toEqual([]);
    // lora_rank 0 is full fine-tuning, which every provider does.
    expect(refused({ method: { lora_rank: 0 } })).toEqual([]);
    expect(refused({ hyperparameters: { learning_rate_multiplier: 2 } })).toEqual([]);
  });

  it('takes one learning rate, a LoRA scale only with a rank, and no reserved metadata keys', () => {
    expect(() => parseFineTuneRequest({ base_model: 'nodeai-tiny', data, hyperparameters: { learning_rate: 1e-3, learning_rate_multiplier: 2 } })).toThrow(/not both/);
    expect(() => parseFineTuneRequest({ base_model: 'nodeai-tiny', data, method: { lora_alpha: 16 } })).toThrow(/needs a lora_rank/);
    expect(() => parseFineTuneRequest({ base_model: 'nodeai-tiny', data, metadata: { [OUTPUT_DIR_METADATA_KEY]: '/etc' } })).toThrow(/NodeAI sets itself/);
    expect(() => parseFineTuneRequest({ base_model: 'nodeai-tiny', data, early_stopping_patience: 0 })).toThrow(ZodError);
  });
});

describe('fromOpenAIJobBody', () => {
  it("maps OpenAI's body, method hyperparameters first, NodeAI's own keys into their places", () => {
    const body = OpenAIJobBody.parse({
      model: 'nodeai-tiny',
      training_file: 'file-a',
      validation_file: 'file-b',
      hyperparameters: { n_epochs: 9 },
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 2, learning_rate_multiplier: 0.5, lora_rank: 4, early_stopping_patience: 3 } } },
      suffix: 'math',
      seed: 7,
      metadata: { team: 'support' },
    });
    expect(parseFineTuneRequest(fromOpenAIJobBody(body))).toMatchObject({
      provider: 'local',
      base_model: 'nodeai-tiny',
      data: { kind: 'prepared', training_file: 'file-a', validation_file: 'file-b' },
      hyperparameters: { n_epochs: 2, batch_size: 'auto', learning_rate: 'auto', learning_rate_multiplier: 0.5 },
      method: { type: 'supervised', lora_rank: 4 },
      early_stopping_patience: 3,
      suffix: 'math',
      seed: 7,
      metadata: { team: 'support' },
    });
  });
});

describe('the evaluation after training, in a job\'s metadata', () => {
  it('is on with 200 examples unless the request says otherwise', () => {
    expect(evaluateExamplesOf(null)).toBe(200);
    expect(evaluateExamplesOf({ [EVALUATE_METADATA_KEY]: evaluateMetadata(false) })).toBe(0);
    expect(evaluateExamplesOf({ [EVALUATE_METADATA_KEY]: evaluateMetadata(true) })).toBe(200);
    expect(evaluateExamplesOf({ [EVALUATE_METADATA_KEY]: evaluateMetadata(20) })).toBe(20);
    expect(evaluateMetadata(undefined)).toBeUndefined();
    expect(() => parseFineTuneRequest({ base_model: 'nodeai-tiny', data, evaluate: 500 })).toThrow(/200/);
    expect(() => parseFineTuneRequest({ base_model: 'nodeai-tiny', data, metadata: { [EVALUATE_METADATA_KEY]: '5' } })).toThrow(/a key NodeAI sets itself/);
  });
});

describe('the device a local job trains on', () => {
  it('is auto unless the request names cpu or cuda; another name is refused; the job keeps it in its metadata', () => {
    expect(parseFineTuneRequest({ base_model: 'nodeai-tiny', data }).device).toEqual({ type: 'auto' });
    expect(parseFineTuneRequest({ base_model: 'nodeai-tiny', data, device: { type: 'cuda', threads: 2 } }).device).toEqual({ type: 'cuda', threads: 2 });
    const gpu = FineTuneRequest.safeParse({ base_model: 'nodeai-tiny', data, device: { type: 'gpu' } });
    expect(gpu.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual(['device.type: Invalid option: expected one of "auto"|"cpu"|"cuda"']);
    expect(deviceOf(null)).toBe('auto');
    expect(deviceOf({ [DEVICE_METADATA_KEY]: 'cpu' })).toBe('cpu');
    expect(deviceOf({ [DEVICE_METADATA_KEY]: 'cuda' })).toBe('cuda');
    expect(() => parseFineTuneRequest({ base_model: 'nodeai-tiny', data, metadata: { [DEVICE_METADATA_KEY]: 'cuda' } })).toThrow(/a key NodeAI sets itself/);
  });
});

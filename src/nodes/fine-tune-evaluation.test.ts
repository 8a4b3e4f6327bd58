// The Fine-Tune node's evaluation after training, on the real trainer process: base vs fine-tuned
// on the validation split, in the node's outputs and the model registry.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Engine } from '../engine/index.ts';
import { JobWorker } from '../jobs/index.ts';
import type { LocalTrainingRunner } from '../providers/local.ts';
import { runLocalFineTune } from '../trainer/supervisor.ts';
import type { TestDb } from '../store/testing.ts';
import type { NodeServices } from './index.ts';
import { makeSqlite, workflowTestEngine } from './test-support.ts';

const TINY_ENV = { NODEAI_TEST_TINY_CONFIG: JSON.stringify({ embeddingLength: 32, blockCount: 1, headCount: 2, headCountKv: 1, feedForwardLength: 64 }) };
// One answer to every question: a model trained on it answers the held-out questions the same way.
const JSONL = Array.from({ length: 10 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `Question ${i}?` }, { role: 'assistant', content: 'OK.' }] })).join('\n') + '\n';
const realTrainer: LocalTrainingRunner = (spec, options) => runLocalFineTune(spec, { ...options, env: TINY_ENV });

describe('Fine-Tune node: evaluation after training', () => {
  let t: TestDb;
  let services: NodeServices;
  let engine: Engine;

  beforeEach(async () => {
    t = await makeSqlite();
    ({ services, engine } = workflowTestEngine(t, { 'ok.jsonl': JSONL }));
  });
  afterEach(async () => {
    engine.close();
    await t.cleanup();
  });

  const workflow = (fineTune: Record<string, unknown>, evaluate?: Record<string, unknown>) => ({
    name: 'eval',
    nodes: [
      { id: 'load', type: 'file_loader', config: { path: 'ok.jsonl' } },
      { id: 'ft', type: 'finetune', config: { epochs: 30, batch_size: 4, learning_rate: 0.003, seed: 1, ...fineTune } },
      ...(evaluate ? [{ id: 'eval', type: 'evaluate', config: evaluate }] : []),
    ],
    edges: [{ source: 'load', target: 'ft' }, ...(evaluate ? [{ source: 'ft', target: 'eval' }] : [])],
  });

  async function train(fineTune: Record<string, unknown>, evaluate?: Record<string, unknown>) {
    const started = await engine.run(workflow(fineTune, evaluate));
    expect(started.status).toBe('waiting');
    const finished = new Promise<string>((resolve) => engine.subscribe((e) => e.type === 'run.finished' && resolve(e.status)));
    await new JobWorker(services.jobs, { train: realTrainer }).runNext();
    expect(await finished).toBe('succeeded');
    const run = await engine.getRun(started.runId);
    return { jobId: started.waiting!.jobId, outputs: run.nodes.find((n) => n.nodeId === 'ft')!.outputs!, evaluated: run.nodes.find((n) => n.nodeId === 'eval')?.outputs };
  }

  it('compares base and fine-tuned on the validation split; the loss is the trainer\'s validation loss', { timeout: 240_000 }, async () => {
    const { jobId, outputs } = await train({});
    const name = String(outputs.fine_tuned_model);
    const evaluation = outputs.evaluation as { models: string[]; summary: Record<string, { loss: number; exact_match: number; contains_match: number }>; examples: number };
    expect(evaluation.models).toEqual(['nodeai-tiny', name]);
    expect(evaluation.examples).toBe(2);
    expect(evaluation.summary[name].exact_match).toBe(1);
    expect(evaluation.summary['nodeai-tiny'].exact_match).toBe(0);
    // The same tokens, the same forward pass: the trainer's last validation loss.
    expect(evaluation.summary[name].loss).toBeCloseTo(Number(outputs.valid_loss), 4);
    expect(evaluation.summary['nodeai-tiny'].loss).toBeGreaterThan(evaluation.summary[name].loss + 1);

    const report = await services.models.evaluation(name);
    expect(report!.examples.map((e) => e.answers[name])).toEqual(['OK.', 'OK.']);
    const events = (await services.jobs.listEvents(jobId, { limit: 1000 })).data.map((e) => e.message);
    expect(events.join('\n')).toMatch(/Evaluating .*: 4\/4 answers/);
    expect(events.join('\n')).toMatch(/Evaluated on 2 validation examples/);
  });

  it('an Evaluate node after Fine-Tune compares the new model with its base on the validation split', { timeout: 240_000 }, async () => {
    const { outputs, evaluated } = await train({ evaluate: false }, {});
    expect(outputs.evaluation).toBeUndefined();
    const name = String(outputs.fine_tuned_model);
    const summary = evaluated!.summary as Record<string, { loss: number; exact_match: number }>;
    expect(evaluated!.models).toEqual(['nodeai-tiny', name]);
    expect(summary[name].exact_match).toBe(1);
    expect(summary['nodeai-tiny'].exact_match).toBe(0);
    expect(summary[name].loss).toBeCloseTo(Number(outputs.valid_loss), 4);
    expect((evaluated!.data as { examples: unknown[] }).examples).toHaveLength(2);
  });

  it('says what is missing: no model, no examples, a bad file ID, an unknown model', async () => {
    const only = (config: Record<string, unknown>, data?: unknown) => ({
      name: 'x',
      nodes: [...(data ? [{ id: 'd', type: 'data_loader', config: { text: JSONL } }] : []), { id: 'e', type: 'evaluate', config }],
      edges: data ? [{ source: 'd', target: 'e' }] : [],
    });
    const message = async (wf: ReturnType<typeof only>) => (await engine.run(wf)).error?.message;
    expect(await message(only({}))).toMatch(/has no model: set "model", or connect a Fine-Tune node/);
    expect(await message(only({ model: 'nodeai-tiny' }))).toMatch(/Nothing to evaluate on\. Connect a File Loader or Data Loader/);
    expect(await message(only({ model: 'nodeai-tiny', examples_file_id: '../x' }))).toMatch(/"examples_file_id" "\.\.\/x" is not a file ID/);
    expect(await message(only({ model: 'ft:nope:x:y' }, true))).toMatch(/Model "ft:nope:x:y" is not a registered fine-tuned model/);
    expect(await message(only({ model: 'base.gguf' }, true))).toMatch(/works from the CLI only|no such file/);
  });

  it('evaluates the examples of a Data Loader', { timeout: 120_000 }, async () => {
    const r = await engine.run({ name: 'x', nodes: [{ id: 'd', type: 'data_loader', config: { text: JSONL } }, { id: 'e', type: 'evaluate', config: { model: 'nodeai-tiny', max_examples: 3 } }], edges: [{ source: 'd', target: 'e' }] });
    expect(r.status).toBe('succeeded');
    const report = r.outputs.e.data as { models: string[]; examples: { expected: string }[]; summary: Record<string, { loss: number }> };
    expect(report.models).toEqual(['nodeai-tiny']);
    expect(report.examples.map((e) => e.expected)).toEqual(['OK.', 'OK.', 'OK.']);
    expect(report.summary['nodeai-tiny'].loss).toBeGreaterThan(1);
  });

  it('skips it when "evaluate" is off', { timeout: 240_000 }, async () => {
    const { outputs } = await train({ evaluate: false, epochs: 1 });
    expect(outputs.evaluation).toBeUndefined();
    expect(await services.models.evaluation(String(outputs.fine_tuned_model))).toBeUndefined();
  });
});

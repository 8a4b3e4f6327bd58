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

  const workflow = (fineTune: Record<string, unknown>) => ({
    name: 'eval',
    nodes: [
      { id: 'load', type: 'file_loader', config: { path: 'ok.jsonl' } },
      { id: 'ft', type: 'finetune', config: { epochs: 30, batch_size: 4, learning_rate: 0.003, seed: 1, ...fineTune } },
    ],
    edges: [{ source: 'load', target: 'ft' }],
  });

  async function train(fineTune: Record<string, unknown>) {
    const started = await engine.run(workflow(fineTune));
    expect(started.status).toBe('waiting');
    const finished = new Promise<string>((resolve) => engine.subscribe((e) => e.type === 'run.finished' && resolve(e.status)));
    await new JobWorker(services.jobs, { train: realTrainer }).runNext();
    expect(await finished).toBe('succeeded');
    const run = await engine.getRun(started.runId);
    return { jobId: started.waiting!.jobId, outputs: run.nodes.find((n) => n.nodeId === 'ft')!.outputs! };
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

  it('skips it when "evaluate" is off', { timeout: 240_000 }, async () => {
    const { outputs } = await train({ evaluate: false, epochs: 1 });
    expect(outputs.evaluation).toBeUndefined();
    expect(await services.models.evaluation(String(outputs.fine_tuned_model))).toBeUndefined();
  });
});

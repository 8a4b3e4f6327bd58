// Small node types for the engine's own tests and benchmark: they exercise the engine
// without any real work.
import { z } from 'zod';
import { defineNode } from './node.ts';
import { NodeRegistry } from './registry.ts';

/** Emits `config.value` as `data` (a workflow's starting point). */
export const constantNode = defineNode({
  type: 'test_constant',
  name: 'Constant',
  category: 'test',
  description: 'Outputs a fixed value.',
  inputs: [],
  outputs: [{ name: 'data' }],
  config: z.object({ value: z.unknown() }),
  run: ({ config }) => ({ data: config.value }),
});

/** Passes its `data` input on unchanged, optionally appending `config.append` to an array. */
export const passThroughNode = defineNode({
  type: 'test_pass',
  name: 'Pass-through',
  category: 'test',
  description: 'Outputs its input.',
  inputs: [{ name: 'data' }],
  outputs: [{ name: 'data' }],
  config: z.object({ append: z.string().optional() }),
  run: ({ inputs, config }) => ({ data: config.append !== undefined ? [...((inputs.data as unknown[]) ?? []), config.append] : inputs.data }),
});

/** Needs `data` and counts its items; a second output `count` shows named handles. */
export const countNode = defineNode({
  type: 'test_count',
  name: 'Count',
  category: 'test',
  description: 'Counts an array input.',
  inputs: [{ name: 'data', required: true }],
  outputs: [{ name: 'data' }, { name: 'count' }],
  config: z.object({ times: z.number().int().min(1).max(10).default(1) }),
  run: ({ inputs, config }) => ({ data: inputs.data, count: (inputs.data as unknown[]).length * config.times }),
});

/** Collects every edge into `items`, in edge order. */
export const mergeNode = defineNode({
  type: 'test_merge',
  name: 'Merge',
  category: 'test',
  description: 'Merges several inputs.',
  inputs: [{ name: 'items', multiple: true }],
  outputs: [{ name: 'data' }],
  config: z.object({}),
  run: ({ inputs }) => ({ data: inputs.items }),
});

/** Throws an error with `config.code`, as a provider error would. */
export const failingNode = defineNode({
  type: 'test_fail',
  name: 'Fail',
  category: 'test',
  description: 'Always fails.',
  inputs: [{ name: 'data' }],
  outputs: [{ name: 'data' }],
  config: z.object({ message: z.string().default('it broke'), code: z.string().optional() }),
  run: ({ config }) => {
    throw Object.assign(new Error(config.message), config.code ? { code: config.code } : {});
  },
});

/** Waits on job `config.job_id`; on resume, outputs the job's model next to the kept state. */
export const waitingNode = defineNode({
  type: 'test_wait',
  name: 'Wait for job',
  category: 'test',
  description: 'Waits durably on a job.',
  inputs: [{ name: 'data' }],
  outputs: [{ name: 'data' }, { name: 'fine_tuned_model' }],
  config: z.object({ job_id: z.string(), custom_resume: z.boolean().default(true) }),
  run: ({ config, inputs }) => ({ wait: { kind: 'job' as const, jobId: config.job_id, state: { input: inputs.data } } }),
});

// Separate type so a test can show the default resume (job outputs become node outputs).
export const waitingDefaultNode = defineNode({
  ...waitingNode,
  type: 'test_wait_default',
  resume: undefined,
});

waitingNode.resume = ({ wait, job }) => {
  if (job.status !== 'succeeded') throw Object.assign(new Error(`job ${job.jobId} ${job.status}`), { code: 'job_' + job.status });
  return { data: (wait.state as { input: unknown }).input, fine_tuned_model: job.outputs?.fine_tuned_model };
};

/** Waits on a job with an API key typed into its settings; on resume, says whether the key survived. */
export const keyedWaitNode = defineNode({
  type: 'test_wait_key',
  name: 'Wait with a key',
  category: 'test',
  description: 'Waits durably with a secret in its settings.',
  inputs: [{ name: 'data' }],
  outputs: [{ name: 'data' }],
  config: z.object({ job_id: z.string(), api_key: z.string().optional() }),
  secretConfig: ['api_key'],
  run: ({ config }) => ({ wait: { kind: 'job' as const, jobId: config.job_id } }),
  resume: ({ config }) => ({ data: `key ${config.api_key?.length ?? 0} chars, ends ${config.api_key?.slice(-3)}` }),
});

/** Runs until cancelled (or `config.ms` passes), reporting progress. */
export const slowNode = defineNode({
  type: 'test_slow',
  name: 'Slow',
  category: 'test',
  description: 'Takes its time.',
  inputs: [{ name: 'data' }],
  outputs: [{ name: 'data' }],
  config: z.object({ ms: z.number().default(60_000) }),
  run: ({ config, inputs, signal, emit }) =>
    new Promise((resolve, reject) => {
      emit({ message: 'working', progress: 0.5 });
      const timer = setTimeout(() => resolve({ data: inputs.data }), config.ms);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(signal.reason);
      });
    }),
});

/** Reads a secret and then misbehaves with it: logs it, outputs it, or throws it. */
export const secretNode = defineNode({
  type: 'test_secret',
  name: 'Secret user',
  category: 'test',
  description: 'Leaks a secret on purpose.',
  inputs: [],
  outputs: [{ name: 'data' }],
  config: z.object({ secret: z.string(), mode: z.enum(['output', 'throw']) }),
  run: async ({ config, secrets, logger, emit }) => {
    const value = await secrets.get(config.secret);
    logger.info(`calling API with key ${value}`, { key: value });
    emit({ message: `auth ${value}` });
    if (config.mode === 'throw') throw new Error(`401 Unauthorized for key ${value}`);
    return { data: { header: `Bearer ${value}` } };
  },
});

export const testNodes = [constantNode, passThroughNode, countNode, mergeNode, failingNode, waitingNode, waitingDefaultNode, keyedWaitNode, slowNode, secretNode];

export function testRegistry(): NodeRegistry {
  return new NodeRegistry(testNodes);
}

/** A straight chain: a constant then `length - 1` pass-through nodes. */
export function chainWorkflow(length: number, name = `chain-${length}`) {
  const nodes = Array.from({ length }, (_, i) => (i === 0 ? { id: 'n0', type: 'test_constant', config: { value: ['start'] } } : { id: `n${i}`, type: 'test_pass', config: {} }));
  const edges = nodes.slice(1).map((n, i) => ({ source: `n${i}`, target: n.id }));
  return { name, nodes, edges };
}

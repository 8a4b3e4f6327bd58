// The Evaluate node: runs a model (and its base, side by side) over chat examples and outputs the
// evaluation report. Wired after a Fine-Tune node it evaluates the model just trained on that
// node's validation split; wired after a File or Data Loader it evaluates on those examples.
import { z } from 'zod';
import { defineNode } from '../engine/index.ts';
import { evaluate, EvaluationRequest, openAIRemoteChat } from '../jobs/evaluation-service.ts';
import { EVALUATE_MAX_EXAMPLES } from '../providers/fine-tune-request.ts';
import { isValidFileId } from '../store/index.ts';
import { fetchModelFile, nodeError, servicesOf } from './services.ts';

const config = z.object({
  model: z
    .string()
    .trim()
    .optional()
    .describe('The model to evaluate: a fine-tuned model\'s name, nodeai-tiny, hf:OWNER/REPO:QUANT, ollama:NAME[:TAG], a .gguf path (CLI only) or openai:MODEL. Empty = the model a connected Fine-Tune node trained.'),
  base_model: z
    .string()
    .trim()
    .optional()
    .describe('A second model answered side by side, e.g. the base it was trained from. Empty = the connected Fine-Tune node\'s base model.'),
  compare_with_base: z.boolean().default(true).describe('Evaluate the base model beside the model (needs base_model, or a connected Fine-Tune node).'),
  examples_file_id: z.string().trim().optional().describe('An uploaded chat JSONL to evaluate on ("nodeai files upload FILE"), when no examples are connected; after a Fine-Tune node its validation split is the default.'),
  max_examples: z.number().int().min(1).max(10_000).default(EVALUATE_MAX_EXAMPLES).describe('Evaluate on at most this many examples (the first ones).'),
  judge: z.string().trim().optional().describe('A chat model that also scores each answer 1–5 by a stated rubric (costs a call per answer; off when empty).'),
});

const NO_DATA_FIX =
  'Connect a File Loader or Data Loader (the examples) or a Fine-Tune node (its validation split) to the "data" input, or set "examples_file_id" to the ID "nodeai files upload FILE" prints.';

export const evaluateNode = defineNode({
  type: 'evaluate',
  name: 'Evaluate',
  category: 'ai',
  description: 'Runs a model, and its base beside it, over chat examples: loss and perplexity on the answers, exact and contains match of the generated answers.',
  inputs: [{ name: 'data', description: 'chat examples (File Loader, Data Loader), or a Fine-Tune node\'s outputs (its model, base and validation split)' }],
  outputs: [
    { name: 'data', description: 'the report: {models, summary, examples}' },
    { name: 'summary', description: 'per model: loss, perplexity, exact_match, contains_match' },
    { name: 'models' },
  ],
  config,
  async run(ctx) {
    const { config, inputs } = ctx;
    const services = servicesOf(ctx);
    const data = inputs.data;
    const fromFineTune = data && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : undefined;
    const str = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v : undefined);

    const model = config.model || str(fromFineTune?.fine_tuned_model);
    if (!model) throw nodeError('invalid_config', 'The Evaluate node has no model: set "model", or connect a Fine-Tune node to its "data" input.');
    const base = config.compare_with_base ? config.base_model || str(fromFineTune?.base_model) : undefined;

    let evalData: z.input<typeof EvaluationRequest>['data'];
    if (Array.isArray(data)) {
      if (data.length === 0) throw nodeError('no_examples', `The "data" input is an empty list. ${NO_DATA_FIX}`);
      evalData = { kind: 'examples', examples: data };
    } else {
      const fileId = config.examples_file_id || str(fromFineTune?.validation_file_id);
      if (!fileId) {
        throw nodeError('no_examples', fromFineTune ? `The connected Fine-Tune node held out no validation examples (validation_split 0). Set "examples_file_id", or give the Fine-Tune node a validation_split.` : `Nothing to evaluate on. ${NO_DATA_FIX}`);
      }
      if (!isValidFileId(fileId)) throw nodeError('invalid_file_id', `"examples_file_id" ${JSON.stringify(String(fileId).slice(0, 80))} is not a file ID: IDs look like "file-" followed by 24 letters or digits. Run "nodeai files list".`);
      evalData = { kind: 'file', file_id: fileId };
    }
    const parsed = EvaluationRequest.safeParse({ models: [...(base && base !== model ? [{ model: base }] : []), { model }], data: evalData, max_examples: config.max_examples, ...(config.judge ? { judge: config.judge } : {}) });
    if (!parsed.success) throw nodeError('invalid_config', `The Evaluate settings are invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}.`);

    const report = await evaluate(parsed.data, {
        models: services.models,
        dataDir: ctx.store.dataDir,
        files: ctx.store.files,
        ...(services.workflowDir ? { workflowDir: services.workflowDir } : {}),
        modelFile: (ref) => fetchModelFile(ctx, services, ref),
        remoteChat: openAIRemoteChat({ getSecret: ctx.secrets.lookupKey, redactor: ctx.store.redactor }),
        signal: ctx.signal,
        onProgress: (p) => ctx.emit({ message: `${p.phase === 'judge' ? 'judging' : p.model}: ${p.done}/${p.total}`, progress: p.total ? p.done / p.total : 0 }),
      });
      const line = report.models.map((m) => `${m}: loss ${report.summary[m].loss?.toFixed(4) ?? 'n/a'}, exact ${(100 * report.summary[m].exact_match).toFixed(0)}%`).join('; ');
      ctx.logger.info(`Evaluated ${report.examples.length} examples. ${line}`);
    // Copies: the redactor that outputs pass through writes a value met twice as "[Circular]".
    return { data: report, summary: structuredClone(report.summary), models: [...report.models] };
  },
});

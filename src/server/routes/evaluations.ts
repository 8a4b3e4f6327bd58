// POST /api/v1/evaluations and GET /api/v1/evaluations/:id: an evaluation is checked at once (its
// models and examples; a bad one is a 400 naming what is wrong), then runs in the background:
// a 202 with the run to poll, progress also on the event stream as `evaluation` events.
import { Hono } from 'hono';
import { z } from 'zod';
import { choiceName, EvaluationRequest, locateModels, readEvaluationData, type EvaluationDeps } from '../../jobs/evaluation-service.ts';
import { notFound } from '../errors.ts';
import { readJson } from '../http.ts';
import type { EvaluationRuns } from '../evaluation-runs.ts';

const ModelField = z.union([z.string().min(1).max(500), z.object({ model: z.string().min(1).max(500) })]);

export const EvaluationBody = z
  .object({
    models: z.array(ModelField).min(1).max(4).describe('side by side, in this order (base first): names, or {model}; each a fine-tuned model, nodeai-tiny, hf:…/ollama:… (pulled first) or openai:MODEL'),
    file_id: z.string().min(1).optional().describe('an uploaded chat JSONL (each example ends with the expected assistant answer)'),
    examples: z.array(z.unknown()).min(1).max(10_000).optional().describe('the chat examples themselves, instead of file_id'),
    max_examples: z.number().int().min(1).max(10_000).optional(),
    judge: z.string().min(1).max(500).optional().describe('a chat model that also scores each answer 1–5'),
  })
  .refine((b) => (b.file_id === undefined) !== (b.examples === undefined), { message: 'give file_id or examples (one of them)', path: ['file_id'] });

export function evaluationRoutes(runs: EvaluationRuns, deps: Omit<EvaluationDeps, 'onProgress' | 'signal'>): Hono {
  const app = new Hono();
  app.post('/', async (c) => {
    const body = await readJson(c, EvaluationBody);
    const request = EvaluationRequest.parse({
      models: body.models.map((m) => (typeof m === 'string' ? { model: m } : m)),
      data: body.examples ? { kind: 'examples', examples: body.examples } : { kind: 'file', file_id: body.file_id },
      ...(body.max_examples ? { max_examples: body.max_examples } : {}),
      ...(body.judge ? { judge: body.judge } : {}),
    });
    // Checked before it is queued, so a typo is a 400 now rather than a failed run later.
    await readEvaluationData(request.data, deps, request.max_examples);
    await locateModels(request, deps);
    return c.json(runs.start(request, request.models.map(choiceName)), 202);
  });
  app.get('/:id', (c) => {
    const run = runs.get(c.req.param('id'));
    if (!run) throw notFound('evaluation', c.req.param('id'), 'Evaluations are kept while the server runs; start one with POST /api/v1/evaluations.');
    return c.json(run);
  });
  return app;
}

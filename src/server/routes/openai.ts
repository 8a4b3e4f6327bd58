// `/v1`: OpenAI's REST shapes served by the local engine, so the official SDKs and every
// OpenAI-compatible tool can upload, fine-tune and chat against NodeAI.
import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import type { JobQueue } from '../../jobs/index.ts';
import type { ChatMessage, ChatProvider } from '../../providers/spec.ts';
import type { Store } from '../../store/index.ts';
import { NODEAI_TINY } from '../../trainer/tiny-model.ts';
import { ApiError, badRequest, toApiError } from '../errors.ts';
import { list, readJson } from '../http.ts';
import { getFileOr404, toApiFile, uploadFile } from './files.ts';
import { OpenAIJobBody } from '../../providers/fine-tune-request.ts';
import { createJob, pageParams } from './jobs.ts';

export interface OpenAiRoutesOptions {
  store: Store;
  jobs?: JobQueue;
  chat?: ChatProvider;
  maxUploadBytes: number;
}

const Content = z.union([z.string(), z.array(z.object({ type: z.string(), text: z.string().optional() }).loose()), z.null()]);
const Message = z
  .object({
    role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
    content: Content.optional(),
  })
  .loose();

const ChatBody = z.object({
  model: z.string().min(1),
  messages: z.array(Message).min(1),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  max_tokens: z.number().int().min(1).max(32_768).nullish(),
  max_completion_tokens: z.number().int().min(1).max(32_768).nullish(),
  seed: z.number().int().nullish(),
  n: z.literal(1).nullish(),
  stream: z.boolean().nullish(),
});

function toMessages(messages: z.output<typeof ChatBody>['messages']): ChatMessage[] {
  return messages.map((m, i) => {
    let content = '';
    if (typeof m.content === 'string') content = m.content;
    else if (Array.isArray(m.content)) {
      const bad = m.content.findIndex((p) => p.type !== 'text');
      if (bad >= 0) throw badRequest('invalid_request', `messages[${i}].content[${bad}] is a "${m.content[bad].type}" part; local models take text only.`, `messages[${i}].content[${bad}].type`);
      content = m.content.map((p) => p.text ?? '').join('');
    }
    return { role: m.role === 'developer' ? 'system' : m.role, content };
  });
}

const chatId = () => 'chatcmpl-' + randomBytes(12).toString('base64url');
const nowSeconds = () => Math.floor(Date.now() / 1000);

export function openAiRoutes(options: OpenAiRoutesOptions): Hono {
  const { store, jobs, chat } = options;
  const app = new Hono();
  const needJobs = () => {
    if (!jobs) throw new ApiError(501, 'not_configured', 'Fine-tuning is not configured on this server.');
    return jobs;
  };

  app.post('/files', async (c) => c.json(toApiFile(await uploadFile(c, store, { maxBytes: options.maxUploadBytes, purposes: ['fine-tune'] }))));
  app.get('/files', async (c) => c.json(list((await store.files.list({ purpose: c.req.query('purpose') || undefined, limit: 10_000 })).map(toApiFile))));
  app.get('/files/:id', async (c) => c.json(toApiFile(await getFileOr404(store, c.req.param('id')))));
  app.delete('/files/:id', async (c) => {
    const row = await getFileOr404(store, c.req.param('id'));
    await store.files.delete(row.id);
    return c.json({ id: row.id, object: 'file', deleted: true });
  });

  app.post('/fine_tuning/jobs', async (c) => c.json(await createJob(needJobs(), store, await readJson(c, OpenAIJobBody))));
  app.get('/fine_tuning/jobs', async (c) => {
    const page = await needJobs().list(pageParams(c, 20, 100));
    return c.json(list(page.data, page.has_more));
  });
  app.get('/fine_tuning/jobs/:id', async (c) => c.json(await needJobs().get(c.req.param('id'))));
  app.post('/fine_tuning/jobs/:id/cancel', async (c) => c.json(await needJobs().cancel(c.req.param('id'))));
  app.post('/fine_tuning/jobs/:id/pause', async (c) => c.json(await needJobs().pause(c.req.param('id'))));
  app.post('/fine_tuning/jobs/:id/resume', async (c) => c.json(await needJobs().resume(c.req.param('id'))));
  app.get('/fine_tuning/jobs/:id/events', async (c) => {
    const page = await needJobs().listEvents(c.req.param('id'), pageParams(c, 20, 10_000));
    return c.json(list(page.data, page.has_more));
  });
  app.get('/fine_tuning/jobs/:id/checkpoints', async (c) => {
    const page = await needJobs().listCheckpoints(c.req.param('id'), pageParams(c, 10, 100));
    return c.json({ ...list(page.data, page.has_more), first_id: page.data[0]?.id ?? null, last_id: page.data.at(-1)?.id ?? null });
  });

  const base = { id: NODEAI_TINY, object: 'model' as const, created: 0, owned_by: 'nodeai' };
  app.get('/models', async (c) => {
    const registered = jobs ? await jobs.models.list() : [];
    return c.json(list([base, ...registered.map((m) => ({ id: m.id, object: 'model' as const, created: Math.floor(m.created_at / 1000), owned_by: 'user' }))]));
  });
  app.get('/models/:model', async (c) => {
    const id = c.req.param('model');
    if (id === NODEAI_TINY) return c.json(base);
    const m = await needJobs().models.find(id);
    if (!m) throw new ApiError(404, 'model_not_found', `The model ${JSON.stringify(id.slice(0, 120))} does not exist.`, 'model');
    return c.json({ id: m.id, object: 'model', created: Math.floor(m.created_at / 1000), owned_by: 'user' });
  });
  app.delete('/models/:model', async (c) => {
    const id = c.req.param('model');
    if (id === NODEAI_TINY) throw badRequest('invalid_request', 'The built-in base model cannot be deleted.', 'model');
    const { model } = await needJobs().models.delete(id);
    return c.json({ id: model.id, object: 'model', deleted: true });
  });

  app.post('/chat/completions', async (c) => {
    if (!chat) throw new ApiError(501, 'not_configured', 'Chat is not configured on this server.');
    const body = await readJson(c, ChatBody);
    const req = {
      model: body.model,
      messages: toMessages(body.messages),
      ...(body.temperature != null ? { temperature: body.temperature } : {}),
      ...(body.top_p != null ? { top_p: body.top_p } : {}),
      ...((body.max_completion_tokens ?? body.max_tokens) != null ? { max_tokens: (body.max_completion_tokens ?? body.max_tokens)! } : {}),
      ...(body.seed != null ? { seed: body.seed } : {}),
      signal: c.req.raw.signal,
    };
    const id = chatId();
    const created = nowSeconds();
    const countUse = () => (jobs && body.model !== NODEAI_TINY ? jobs.models.recordUse(body.model).catch(() => undefined) : undefined);
    if (!body.stream) {
      const result = await chat.chat(req);
      await countUse();
      return c.json({
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: result.text, refusal: null }, finish_reason: result.finish_reason, logprobs: null }],
        usage: result.usage,
      });
    }
    // Start the generation before answering, so an unknown model is a plain 404, not a
    // stream that opens and then fails.
    const iterator = chat.stream(req)[Symbol.asyncIterator]();
    const first = await iterator.next();
    const chunk = (delta: Record<string, unknown>, finish: string | null) =>
      JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] });
    return streamSSE(c, async (stream) => {
      try {
        await stream.writeSSE({ data: chunk({ role: 'assistant', content: '' }, null) });
        for (let next = first; !next.done; next = await iterator.next()) {
          if (stream.aborted) break;
          if (next.value) await stream.writeSSE({ data: chunk({ content: next.value }, null) });
        }
        await stream.writeSSE({ data: chunk({}, 'stop') });
        await countUse();
      } catch (err) {
        await stream.writeSSE({ data: JSON.stringify(toApiError(err).body()) });
      } finally {
        await iterator.return?.();
      }
      await stream.writeSSE({ data: '[DONE]' });
    });
  });

  return app;
}

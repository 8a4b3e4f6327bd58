// `/v1/chat/completions`: OpenAI's chat completions, plain and streamed, answered by a ChatProvider.
import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import type { JobQueue } from '../../../jobs/index.ts';
import type { ChatMessage, ChatProvider } from '../../../providers/spec.ts';
import { NODEAI_TINY } from '../../../trainer/tiny-model.ts';
import { ApiError, badRequest, toApiError } from '../../errors.ts';
import { readJson } from '../../http.ts';

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

export function v1ChatRoutes(chat: ChatProvider | undefined, jobs: JobQueue | undefined): Hono {
  const app = new Hono();
  app.post('/completions', async (c) => {
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

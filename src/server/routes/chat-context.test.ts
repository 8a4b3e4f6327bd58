// A prompt longer than the model's context is the caller's mistake: 400 context_length_exceeded
// on /v1 (OpenAI's shape, streamed or not), and the same code on a Chat node's failed run.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../store/testing.ts';
import { builtInNodes, startTestServer, TEST_TOKEN, type TestServer } from '../testing.ts';

// nodeai-tiny has a 256-token context and a byte-level vocabulary: 2,000 characters overflow it.
const LONG_PROMPT = 'Tell me about this: ' + 'lorem ipsum '.repeat(170);
const CONTEXT_MESSAGE = /maximum context length is 256 tokens, but the messages \(plus one reply token\) are \d{3,} tokens/;

describe('a chat prompt longer than the context', () => {
  let t: TestServer;
  let client: OpenAI;

  beforeAll(async () => {
    t = await startTestServer({
      wire: builtInNodes,
    });
    client = new OpenAI({ apiKey: TEST_TOKEN, baseURL: t.url + '/v1', maxRetries: 0 });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('is 400 context_length_exceeded on /v1/chat/completions, with both lengths', async () => {
    const res = await t.api('/v1/chat/completions', { method: 'POST', json: { model: 'nodeai-tiny', messages: [{ role: 'user', content: LONG_PROMPT }], max_tokens: 4 } });
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.error).toMatchObject({ code: 'context_length_exceeded', type: 'invalid_request_error' });
    expect(body.error.message).toMatch(CONTEXT_MESSAGE);
    // The official SDK sees OpenAI's error, streamed or not.
    await expect(client.chat.completions.create({ model: 'nodeai-tiny', messages: [{ role: 'user', content: LONG_PROMPT }], stream: true })).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded' });
    // A prompt that fits still answers.
    const ok = await client.chat.completions.create({ model: 'nodeai-tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 });
    expect(ok.object).toBe('chat.completion');
  });

  it('fails a Chat node run through /api/v1 with the same code and message', async () => {
    const workflow = { name: 'too long', nodes: [{ id: 'chat', type: 'chat', config: { prompt: LONG_PROMPT, max_tokens: 4 } }], edges: [] };
    const started = await t.api('/api/v1/runs', { method: 'POST', json: { workflow } });
    expect(started.status).toBe(202);
    const { id } = await started.json();
    const run = await until(async () => {
      const r = await (await t.api(`/api/v1/runs/${id}`)).json();
      return r.status === 'failed' ? r : undefined;
    });
    const node = run.nodes.find((n: { node_id: string }) => n.node_id === 'chat');
    expect(node.error).toMatchObject({ code: 'context_length_exceeded' });
    expect(node.error.message).toMatch(CONTEXT_MESSAGE);
  });
});

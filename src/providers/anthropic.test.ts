// AnthropicChatProvider through the official SDK against a local server that follows Anthropic's
// documented Messages API: the JSON reply, the SSE event stream (message_start, content_block_*,
// ping, message_delta, message_stop), and error bodies `{type: "error", error: {type, message}}`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnthropicChatProvider, findAnthropicKey } from './anthropic.ts';
import { startFakeServer, type FakeServer, type Reply } from './testing.ts';

const message = (text: string) => ({
  id: 'msg_01',
  type: 'message',
  role: 'assistant',
  model: 'claude-test-1',
  content: [{ type: 'text', text }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 12, output_tokens: 3 },
});

const streamOf = (pieces: string[]): Reply => ({
  sse: [
    ['message_start', { type: 'message_start', message: { ...message(''), content: [], stop_reason: null, usage: { input_tokens: 12, output_tokens: 1 } } }],
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
    ['ping', { type: 'ping' }],
    ...pieces.map((text): [string, unknown] => ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }]),
    ['content_block_stop', { type: 'content_block_stop', index: 0 }],
    ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: pieces.length } }],
    ['message_stop', { type: 'message_stop' }],
  ],
});

describe('AnthropicChatProvider', () => {
  let fake: FakeServer;
  let script: (n: number) => Reply;
  beforeAll(async () => {
    fake = await startFakeServer((_req, n) => script(n));
  });
  afterAll(() => fake?.close());
  const provider = (maxRetries = 0) => new AnthropicChatProvider({ apiKey: 'sk-ant-secret-42', baseURL: fake.url, maxRetries, timeoutMs: 2_000 });
  const reset = (fn: (n: number) => Reply) => {
    fake.requests.length = 0;
    script = fn;
  };

  it('chat: system prompt in the system field, user/assistant turns, a max_tokens always set; text and usage back', async () => {
    reset(() => ({ json: message('Hello there.') }));
    const res = await provider().chat({
      model: 'claude-test-1',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello.' },
        { role: 'user', content: 'Again' },
      ],
      temperature: 1.5,
    });
    expect(res).toEqual({ text: 'Hello there.', model: 'claude-test-1', finish_reason: 'stop', usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 } });
    const req = fake.requests[0];
    expect(req).toMatchObject({ method: 'POST', path: '/v1/messages' });
    expect(req.headers['anthropic-version']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(JSON.parse(req.body)).toEqual({
      model: 'claude-test-1',
      max_tokens: 1024,
      system: 'Be brief.',
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello.' },
        { role: 'user', content: 'Again' },
      ],
      // Anthropic's range is 0..1.
      temperature: 1,
      stream: false,
    });
  });

  it('stream: yields the text deltas of the SSE event stream, skipping ping and the rest', async () => {
    reset(() => streamOf(['Hel', 'lo', '!']));
    const pieces: string[] = [];
    for await (const p of provider().stream({ model: 'claude-test-1', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 20 })) pieces.push(p);
    expect(pieces).toEqual(['Hel', 'lo', '!']);
    expect(JSON.parse(fake.requests[0].body)).toMatchObject({ stream: true, max_tokens: 20 });
  });

  it('an error event inside the stream ends it with server_error', async () => {
    reset(() => ({ sse: [['message_start', { type: 'message_start', message: message('') }], ['error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }]] }));
    const consume = async () => {
      for await (const _ of provider().stream({ model: 'claude-test-1', messages: [{ role: 'user', content: 'Hi' }] })) void _;
    };
    await expect(consume()).rejects.toMatchObject({ code: 'server_error', message: expect.stringMatching(/Overloaded/) });
  });

  it('529 overloaded is retried by the SDK, then answers; a 401 maps to auth without the key', async () => {
    reset((n) => (n === 1 ? { status: 529, headers: { 'retry-after': '0' }, json: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } } : { json: message('ok') }));
    expect((await provider(1).chat({ model: 'claude-test-1', messages: [{ role: 'user', content: 'Hi' }] })).text).toBe('ok');
    expect(fake.requests).toHaveLength(2);
    reset(() => ({ status: 401, json: { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key sk-ant-secret-42' } } }));
    const err = await provider().chat({ model: 'claude-test-1', messages: [{ role: 'user', content: 'Hi' }] }).catch((e: unknown) => e as Error);
    expect(err).toMatchObject({ code: 'auth', status: 401, provider: 'anthropic' });
    expect((err as Error).message).toMatch(/nodeai secrets set ANTHROPIC_API_KEY/);
    expect((err as Error).message).not.toContain('sk-ant-secret-42');
  });

  it('finds the key in the node setting, then the vault, then the environment, else says where to add it', async () => {
    const vault = async (name: string) => (name === 'ANTHROPIC_API_KEY' ? { value: 'from-vault', allowedHosts: [] } : undefined);
    expect(await findAnthropicKey({ configKey: ' from-node ', getSecret: vault, env: {} })).toBe('from-node');
    expect(await findAnthropicKey({ getSecret: vault, env: { ANTHROPIC_API_KEY: 'from-env' } })).toBe('from-vault');
    expect(await findAnthropicKey({ getSecret: async () => undefined, env: { ANTHROPIC_API_KEY: 'from-env' } })).toBe('from-env');
    await expect(findAnthropicKey({ env: {} })).rejects.toMatchObject({ code: 'api_key_missing', message: expect.stringMatching(/^Anthropic API key not found\. .*nodeai secrets set ANTHROPIC_API_KEY/) });
  });
});

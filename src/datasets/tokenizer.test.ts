import { describe, expect, it } from 'vitest';
import { byteTokenizer, countExampleTokens, openAITokenizer, type Tokenizer } from './tokenizer.ts';

const example = {
  messages: [
    { role: 'system' as const, content: 'You are a helpful assistant.' },
    { role: 'user' as const, content: 'Hello world' },
    { role: 'assistant' as const, content: 'Hi there!' },
  ],
};

describe('tokenizers', () => {
  it('counts with the real OpenAI encodings', async () => {
    const o200k = await openAITokenizer('o200k_base');
    const cl100k = await openAITokenizer('cl100k_base');
    expect(o200k.countTokens('Hello world')).toBe(2);
    expect(cl100k.countTokens('Hello world')).toBe(2);
    expect(o200k.countTokens('<|endoftext|>')).toBeGreaterThan(1); // counted as text, not refused
  });

  it("uses the cookbook's chat arithmetic for OpenAI models", async () => {
    const t = await openAITokenizer('o200k_base');
    // 3 per message + role + content, 3 to prime the reply
    const expected = 3 * 3 + [ 'system', 'You are a helpful assistant.', 'user', 'Hello world', 'assistant', 'Hi there!'].reduce((n, s) => n + t.countTokens(s), 0) + 3;
    expect(countExampleTokens(t, example)).toEqual({ total: expected, assistant: t.countTokens('Hi there!') });
  });

  it('counts UTF-8 bytes for the byte-level local model', () => {
    // ChatML: bytes of contents (28 + 11 + 9) + bytes of roles (6 + 4 + 9) + 4 per message
    expect(countExampleTokens(byteTokenizer, example)).toEqual({ total: 48 + 19 + 12, assistant: 9 });
    expect(byteTokenizer.countTokens('é')).toBe(2);
  });

  it('takes a plugged tokenizer, including an exact whole-conversation count', () => {
    const words: Tokenizer = { name: 'words', countTokens: (s) => s.split(/\s+/).filter(Boolean).length, countChat: (e) => 100 + e.messages.length };
    expect(countExampleTokens(words, example)).toEqual({ total: 103, assistant: 2 });
  });

  it('counts both answers of a DPO pair with their prompt', () => {
    const dpo = { input: { messages: [{ role: 'user' as const, content: 'abc' }] }, preferred_output: [{ role: 'assistant' as const, content: 'good' }], non_preferred_output: [{ role: 'assistant' as const, content: 'no' }] };
    // prompt (3 + 'user' + 4) with each answer (content + 'assistant' + 4)
    expect(countExampleTokens(byteTokenizer, dpo)).toEqual({ total: 11 + 17 + 11 + 15, assistant: 4 });
  });
  it('encodes each text once, the roles once per tokenizer, and keeps the same counts', async () => {
    const o200k = await openAITokenizer('o200k_base');
    const seen: string[] = [];
    const spy: Tokenizer = { name: 'spy', countTokens: (s) => (seen.push(s), o200k.countTokens(s)) };
    const call = { id: 'c1', type: 'function' as const, function: { name: 'refund', arguments: '{"order":4821}' } };
    const withCall = { messages: [...example.messages, { role: 'assistant' as const, content: null, tool_calls: [call] }, { role: 'tool' as const, content: 'ok', tool_call_id: 'c1' }] };
    const counted = countExampleTokens(spy, withCall);
    const calls = JSON.stringify([call]);
    const sum = (...xs: string[]) => xs.reduce((n, x) => n + o200k.countTokens(x), 0);
    expect(counted).toEqual({
      total: 3 * 5 + sum('system', 'You are a helpful assistant.', 'user', 'Hello world', 'assistant', 'Hi there!', 'assistant', calls, 'tool', 'ok') + 3,
      assistant: sum('Hi there!', calls),
    });
    expect(seen.filter((s) => s === 'Hi there!')).toHaveLength(1);
    expect(seen.filter((s) => s === calls)).toHaveLength(1);
    expect(seen.filter((s) => s === 'assistant')).toHaveLength(1);
    seen.length = 0;
    countExampleTokens(spy, withCall);
    expect(seen).not.toContain('assistant');
  });
});

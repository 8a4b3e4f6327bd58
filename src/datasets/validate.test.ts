import { describe, expect, it } from 'vitest';
import type { DatasetIssue } from './issues.ts';
import { newFormatState, validateRecord, type FormatState } from './validate.ts';

const sys = { role: 'system', content: 'Be brief.' };
const user = { role: 'user', content: 'Hi' };
const bot = { role: 'assistant', content: 'Hello!' };

function run(value: unknown, state: FormatState = newFormatState(), line = 7) {
  const issues: DatasetIssue[] = [];
  const result = validateRecord(value, line, state, (i) => issues.push(i));
  return { result, issues, codes: issues.map((i) => [i.code, i.path]) };
}

describe('validateRecord: chat', () => {
  it('accepts a valid multi-turn example with tools, weights and tool calls', () => {
    const call = { id: 'c1', type: 'function', function: { name: 'track', arguments: '{"order":1}' } };
    const value = {
      messages: [sys, user, { role: 'assistant', content: null, tool_calls: [call] }, { role: 'tool', tool_call_id: 'c1', content: 'shipped' }, { role: 'assistant', content: 'It shipped.', weight: 1 }, { role: 'user', content: 'Thanks' }, { role: 'assistant', content: 'Welcome', weight: 0 }],
      tools: [{ type: 'function', function: { name: 'track', parameters: {} } }],
      id: 'ignored',
    };
    const { result, issues } = run(value);
    expect(issues).toEqual([]);
    expect(result?.format).toBe('chat');
    expect(result?.example).toEqual({ messages: value.messages, tools: value.tools });
  });

  it.each([
    [{ messages: 'hi' }, 'missing_messages_list', 'messages', "'messages' must be a list of messages, found a string"],
    [{ messages: [] }, 'missing_messages_list', 'messages', "'messages' is empty"],
    [{ messages: [sys, 5, bot] }, 'data_type', 'messages[1]', 'Message 1 must be an object, found a number'],
    [{ messages: [sys, { content: 'Hi' }, bot] }, 'message_missing_key', 'messages[1].role', "Message 1 has no 'role'"],
    [{ messages: [sys, { role: 'user' }, bot] }, 'message_missing_key', 'messages[1].content', "Message 1 has no 'content'"],
    [{ messages: [sys, { ...user, mood: 'x' }, bot] }, 'message_unrecognized_key', 'messages[1].mood', "Message 1 has an unrecognized key 'mood'"],
    [{ messages: [sys, { role: 'bot', content: 'Hi' }, bot] }, 'unrecognized_role', 'messages[1].role', 'Message 1 has an unrecognized role "bot"'],
    [{ messages: [sys, { role: 'user', content: null }, bot] }, 'missing_content', 'messages[1].content', 'Message 1 has null content'],
    [{ messages: [sys, { role: 'user', content: 3 }, bot] }, 'missing_content', 'messages[1].content', 'Message 1 content must be text, found a number'],
    [{ messages: [sys, user] }, 'example_missing_assistant_message', 'messages', 'Example has no assistant message'],
    [{ messages: [user, sys, bot] }, 'role_order', 'messages[1].role', 'Message 1 is a system message after the conversation started'],
    [{ messages: [user, { role: 'tool', content: 'x' }, bot] }, 'role_order', 'messages[1].role', 'Message 1 is a tool result without an assistant tool call before it'],
    [{ messages: [user, { ...bot, weight: 0.5 }] }, 'invalid_weight', 'messages[1].weight', 'Message 1 has weight 0.5; it must be 0 or 1'],
    [{ messages: [{ ...user, weight: 1 }, bot] }, 'invalid_weight', 'messages[0].weight', 'Message 0 is a user message; only assistant messages may have a weight'],
    [{ messages: [user, { role: 'assistant', content: null, tool_calls: [{ id: 1 }] }] }, 'invalid_tool_calls', 'messages[1].tool_calls', 'Message 1 has malformed tool_calls'],
    [{ messages: [user, bot], tools: [{ name: 'x' }] }, 'invalid_tools', 'tools', "'tools' must be a list of function tools"],
  ])('%j → %s', (value, code, path, message) => {
    const { result, issues } = run(value);
    expect(result).toBeNull();
    const found = issues.find((i) => i.code === code);
    expect(found).toMatchObject({ severity: 'error', line: 7, code, path, message });
    expect(found?.hint.length).toBeGreaterThan(10);
  });

  it('warns about a missing system or user message and empty content, but accepts the example', () => {
    const { result, codes } = run({ messages: [{ role: 'assistant', content: ' ' }] });
    expect(result).not.toBeNull();
    expect(codes).toEqual([
      ['empty_content', 'messages[0].content'],
      ['missing_system_message', 'messages'],
      ['missing_user_message', 'messages'],
    ]);
  });

  it('warns when every assistant message has weight 0', () => {
    expect(run({ messages: [sys, user, { ...bot, weight: 0 }] }).codes).toEqual([['no_trainable_messages', 'messages']]);
  });

  it('accepts text content parts', () => {
    expect(run({ messages: [sys, { role: 'user', content: [{ type: 'text', text: 'Hi' }] }, bot] }).issues).toEqual([]);
  });
});

describe('validateRecord: formats', () => {
  it('converts completion lines to chat', () => {
    const { result, issues } = run({ prompt: 'Q', completion: 'A' });
    expect(issues).toEqual([]);
    expect(result).toEqual({ format: 'completion', example: { messages: [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'A' }] } });
    expect(run({ prompt: 'Q' }).codes).toEqual([['missing_content', 'completion']]);
    expect(run({ prompt: 1, completion: 'A' }).codes).toEqual([['data_type', 'prompt']]);
  });

  it("says exactly what a line without a known format lacks", () => {
    const { issues } = run({ question: 'Q', answer: 'A' });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ code: 'unknown_format', line: 7, message: "Training example must have 'messages' or 'prompt'/'completion'" });
    expect(issues[0].hint).toMatch(/^Write each line as \{"messages": \[\.\.\.\]\}/);
  });

  it('reports a number where an object belongs as data_type', () => {
    expect(run(42).issues[0]).toMatchObject({ code: 'data_type', message: 'Each example must be a JSON object, found a number' });
    expect(run([1]).issues[0].message).toBe('Each example must be a JSON object, found an array');
    expect(run(null).issues[0].message).toBe('Each example must be a JSON object, found null');
  });

  it('fixes the format at the first example and rejects other formats after it', () => {
    const state = newFormatState();
    expect(run({ messages: [sys, user, bot] }, state, 3).result).not.toBeNull();
    const mixed = run({ prompt: 'Q', completion: 'A' }, state, 9);
    expect(mixed.issues[0]).toMatchObject({
      code: 'mixed_formats',
      line: 9,
      message: 'Example is in completion ("prompt"/"completion") format, but the file started in chat ("messages") format on line 3',
    });
    // In a chat file, a line with no known keys is missing its messages list (the cookbook's code).
    expect(run({ text: 'x' }, state).codes).toEqual([['missing_messages_list', 'messages']]);
  });
});

describe('validateRecord: DPO', () => {
  const good = { input: { messages: [sys, user] }, preferred_output: [bot], non_preferred_output: [{ role: 'assistant', content: 'What?' }] };

  it('accepts a preference pair', () => {
    const { result, issues } = run(good);
    expect(issues).toEqual([]);
    expect(result?.format).toBe('dpo');
    expect(result?.example).toEqual(good);
  });

  it.each([
    [{ ...good, input: undefined }, 'input', "DPO example has no 'input'"],
    [{ ...good, input: { messages: [sys, user, bot] } }, 'input.messages[2]', 'The DPO input must end with a user message'],
    [{ ...good, input: { messages: [] } }, 'input.messages', "'input.messages' is empty"],
    [{ ...good, preferred_output: [bot, bot] }, 'preferred_output', "'preferred_output' must be a list with exactly one assistant message"],
    [{ ...good, non_preferred_output: [user] }, 'non_preferred_output', "'non_preferred_output' must be a list with exactly one assistant message"],
  ])('%j is invalid_dpo at %s', (value, path, message) => {
    const { result, issues } = run(value);
    expect(result).toBeNull();
    expect(issues.find((i) => i.code === 'invalid_dpo')).toMatchObject({ path, message });
  });

  it('warns when both outputs are the same', () => {
    expect(run({ ...good, non_preferred_output: [bot] }).codes).toEqual([['identical_preference', 'non_preferred_output']]);
  });
});

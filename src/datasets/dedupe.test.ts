import { describe, expect, it } from 'vitest';
import { DuplicateFinder } from './dedupe.ts';
import type { ChatMessage } from './types.ts';

const chat = (...turns: Array<[ChatMessage['role'], ChatMessage['content']]>): ChatMessage[] => turns.map(([role, content]) => ({ role, content }));

/** Whether the finder takes `b` (seen second) for a repeat of `a`. */
function same(a: ChatMessage[], b: ChatMessage[], extraA?: unknown, extraB?: unknown): boolean {
  const d = new DuplicateFinder();
  expect(d.checkExample(a, extraA, 1)).toBeNull();
  return d.checkExample(b, extraB, 2) === 1;
}

describe('DuplicateFinder', () => {
  it('returns the first line of a repeat and null for new examples', () => {
    const d = new DuplicateFinder();
    const a = chat(['user', 'hi'], ['assistant', 'hello']);
    const b = chat(['user', 'hi'], ['assistant', 'hello!']);
    expect(d.checkExample(a, undefined, 3)).toBeNull();
    expect(d.checkExample(b, undefined, 4)).toBeNull();
    expect(d.checkExample(a, undefined, 9)).toBe(3);
    expect(d.checkExample(structuredClone(b), undefined, 10)).toBe(4);
  });

  it('compares roles, contents and tool calls only, whatever the order of keys in a message', () => {
    const a: ChatMessage[] = [
      { role: 'user', content: 'Refund order #4821' },
      { role: 'assistant', content: 'Done.', weight: 1 },
    ];
    const b = [{ content: 'Refund order #4821', role: 'user' }, { weight: 0, content: 'Done.', role: 'assistant', name: 'agent' }] as ChatMessage[];
    expect(same(a, b)).toBe(true);
  });

  it('tells apart examples that differ in any role, content, boundary, tool call or extra', () => {
    const base = chat(['system', 'Be brief.'], ['user', 'Where is my order?'], ['assistant', 'It shipped today.']);
    expect(same(base, chat(['system', 'Be brief.'], ['user', 'Where is my order?'], ['assistant', 'It shipped today!']))).toBe(false);
    expect(same(base, chat(['system', 'Be brief.'], ['user', 'Where is my order?'], ['user', 'It shipped today.']))).toBe(false);
    expect(same(base, chat(['system', 'Be brief.'], ['user', 'Where is my order?']))).toBe(false);
    // where one message ends and the next starts matters, also inside a two-character step
    expect(same(chat(['user', 'ab'], ['user', 'c']), chat(['user', 'a'], ['user', 'bc']))).toBe(false);
    expect(same(chat(['user', 'ab']), chat(['user', 'a'], ['user', 'b']))).toBe(false);
    expect(same(chat(['user', 'a']), chat(['user', 'a\u0000']))).toBe(false);
    expect(same(chat(['user', '']), chat(['user', '\u0000']))).toBe(false);
    // a text part is not the same as the string it would print as
    expect(same(chat(['user', 'null']), chat(['user', null]))).toBe(false);
    expect(same(chat(['user', 'hi']), chat(['user', [{ type: 'text', text: 'hi' }]]))).toBe(false);
    const call = (args: string): ChatMessage => ({ role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'refund', arguments: args } }] });
    expect(same([...chat(['user', 'refund']), call('{"order":1}')], [...chat(['user', 'refund']), call('{"order":2}')])).toBe(false);
    expect(same([...chat(['user', 'refund']), call('{"order":1}')], [...chat(['user', 'refund']), call('{"order":1}')])).toBe(true);
    const tools = [{ type: 'function', function: { name: 'refund' } }];
    expect(same(base, base, tools, undefined)).toBe(false);
    expect(same(base, base, tools, [{ type: 'function', function: { name: 'refunds' } }])).toBe(false);
    expect(same(base, base, tools, structuredClone(tools))).toBe(true);
  });

  it('hashes text beyond Latin-1 (two-byte and astral characters) by every code unit', () => {
    expect(same(chat(['user', 'Grüße 👋']), chat(['user', 'Grüße 👋']))).toBe(true);
    expect(same(chat(['user', 'Grüße 👋']), chat(['user', 'Grüße 👍']))).toBe(false);
    expect(same(chat(['user', '日本語']), chat(['user', '日本誤']))).toBe(false);
  });

  it('finds exactly the repeated texts at every length, short (hashed in place) or long (hashed from a copy)', () => {
    const d = new DuplicateFinder();
    const seen = new Map<string, number>();
    const words = 'Tap Forgot password on the login screen, Grüße 👋 — '.repeat(3);
    let line = 0;
    for (let round = 0; round < 2; round++) {
      for (let n = 0; n <= 80; n++) {
        for (const text of ['x'.repeat(n), words.slice(0, n), 'é'.repeat(n), 'x'.repeat(Math.max(0, n - 1)) + '\ud800']) {
          line++;
          expect(d.checkExample(chat(['user', text]), undefined, line)).toBe(seen.get(text) ?? null);
          if (!seen.has(text)) seen.set(text, line);
        }
      }
    }
    // lone surrogates are compared as they are, not as the replacement character UTF-8 would write
    expect(same(chat(['user', 'a'.repeat(40) + '\ud800']), chat(['user', 'a'.repeat(40) + '\udc00']))).toBe(false);
    expect(same(chat(['user', 'a'.repeat(40) + '\ud800']), chat(['user', 'a'.repeat(40) + '\ufffd']))).toBe(false);
  });

  it('handles a text of several megabytes, then goes on with ordinary ones', () => {
    const d = new DuplicateFinder();
    const big = 'lorem ipsum '.repeat(400_000);
    expect(d.checkExample(chat(['user', big]), undefined, 1)).toBeNull();
    expect(d.checkExample(chat(['user', big.slice(0, -1) + '!']), undefined, 2)).toBeNull();
    expect(d.checkExample(chat(['user', 'short one, then a long one: ' + 'z'.repeat(100)]), undefined, 3)).toBeNull();
    expect(d.checkExample(chat(['user', big]), undefined, 4)).toBe(1);
    expect(d.checkExample(chat(['user', 'short one, then a long one: ' + 'z'.repeat(100)]), undefined, 5)).toBe(3);
  });

  it('keeps a million digests across growth without false repeats, and still finds every repeat', () => {
    const d = new DuplicateFinder();
    let repeats = 0;
    for (let i = 1; i <= 1_000_000; i++) if (d.check(`{"messages":[{"role":"user","content":"example ${i}"}]}`, i) !== null) repeats++;
    expect(repeats).toBe(0);
    for (const i of [1, 2, 123_456, 999_999, 1_000_000]) expect(d.check(`{"messages":[{"role":"user","content":"example ${i}"}]}`, 2_000_000)).toBe(i);
  });

  it('finds repeats among near-identical examples (one character apart)', () => {
    const d = new DuplicateFinder();
    const text = 'Tap Forgot password on the login screen. '.repeat(5);
    let repeats = 0;
    for (let i = 0; i < text.length; i++) {
      for (const c of 'xyz') {
        const line = i * 3 + 'xyz'.indexOf(c) + 1;
        if (d.checkExample(chat(['user', 'reset?'], ['assistant', text.slice(0, i) + c + text.slice(i + 1)]), undefined, line) !== null) repeats++;
      }
    }
    expect(/[xyz]/.test(text)).toBe(false); // so every variant is a different text
    expect(repeats).toBe(0);
    expect(d.checkExample(chat(['user', 'reset?'], ['assistant', 'y' + text.slice(1)]), undefined, 9999)).toBe(2);
  });
});

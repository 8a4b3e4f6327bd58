import { describe, expect, it } from 'vitest';
import {
  ChatFormatError,
  ContextOverflowError,
  encodeChatForTraining,
  encodePromptForInference,
  renderChat,
  renderPromptForInference,
  type ChatMessage,
} from './chat-format.ts';
import { createTinyModel } from './tiny-model.ts';
import { ByteLevelTokenizer } from './tokenizer.ts';

const model = createTinyModel({ seed: 1, blockCount: 1, embeddingLength: 16, headCount: 2, headCountKv: 1, feedForwardLength: 32 });
const tok = new ByteLevelTokenizer(model.tokenizer);

/** The masked spans as text, to read the test like the data. */
function maskedText(tokens: Int32Array, mask: Uint8Array): string[] {
  const spans: string[] = [];
  let cur: number[] | undefined;
  tokens.forEach((t, i) => {
    if (mask[i]) (cur ??= []).push(t);
    else if (cur) {
      spans.push(tok.decode(cur, { special: true }));
      cur = undefined;
    }
  });
  if (cur) spans.push(tok.decode(cur, { special: true }));
  return spans;
}

const chat: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Capital of France?' },
  { role: 'assistant', content: 'Paris.', weight: 1 },
  { role: 'user', content: 'And of Spain?' },
  { role: 'assistant', content: 'Lisbon.', weight: 0 },
  { role: 'user', content: 'Wrong, try again.' },
  { role: 'assistant', content: [{ type: 'text', text: 'Madrid.' }] },
];

describe('chat formatting', () => {
  it('masks exactly the assistant content plus <|im_end|> of weighted messages', () => {
    const seq = encodeChatForTraining(model, tok, chat);
    const full = renderChat(model.tokenizer, chat, { addGenerationPrompt: false });
    expect(Array.from(seq.tokens)).toEqual(tok.encode(full));
    expect(seq.lossMask.length).toBe(seq.tokens.length);
    expect(maskedText(seq.tokens, seq.lossMask)).toEqual(['Paris.<|im_end|>', 'Madrid.<|im_end|>']);
    // The token before each masked span is the "\n" of the assistant opener.
    const first = seq.lossMask.indexOf(1);
    expect(tok.decode(seq.tokens.slice(first - 10, first), { special: true })).toBe('assistant\n');
  });

  it('trains on the same tokens inference prompts with', () => {
    const seq = encodeChatForTraining(model, tok, chat);
    const prompt = encodePromptForInference(model, tok, chat.slice(0, 6));
    expect(Array.from(seq.tokens.slice(0, prompt.length))).toEqual(prompt);
    expect(seq.lossMask[prompt.length - 1]).toBe(0);
    expect(seq.lossMask[prompt.length]).toBe(1);
  });

  it('renders the inference prompt ending with the assistant opener', () => {
    const text = renderPromptForInference(model, [{ role: 'user', content: 'Hi' }]);
    expect(text).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  });

  it('renders tools and tool calls and masks the call', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Weather in Oslo?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'weather', arguments: '{"city":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: '-3°C' },
      { role: 'assistant', content: 'It is -3°C.' },
    ];
    const tools = [{ type: 'function', function: { name: 'weather', parameters: { type: 'object' } } }];
    // A tools block does not fit nodeai-tiny's 256-byte context; allow a longer sequence here.
    const seq = encodeChatForTraining(model, tok, messages, { tools, maxTokens: 1024 });
    expect(maskedText(seq.tokens, seq.lossMask)).toEqual([
      '<tool_call>{"name": "weather", "arguments": {"city":"Oslo"}}</tool_call><|im_end|>',
      'It is -3°C.<|im_end|>',
    ]);
    expect(tok.decode(seq.tokens, { special: true })).toContain('<tools>\n{"type": "function"');
  });

  it('says by how much an example exceeds the context', () => {
    const long: ChatMessage[] = [
      { role: 'user', content: 'x'.repeat(300) },
      { role: 'assistant', content: 'ok' },
    ];
    let err: unknown;
    try {
      encodeChatForTraining(model, tok, long);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ContextOverflowError);
    expect((err as ChatFormatError).code).toBe('CONTEXT_OVERFLOW');
    const n = tok.encode(renderChat(model.tokenizer, long, { addGenerationPrompt: false })).length;
    expect((err as Error).message).toContain(`is ${n} tokens, ${n - 256} more than the model's context of 256 tokens`);
    expect(encodeChatForTraining(model, tok, long, { maxTokens: 1000 }).tokens.length).toBe(n);
  });

  it('gives typed errors for a missing or broken template', () => {
    const noTemplate = { ...model, tokenizer: { ...model.tokenizer, chatTemplate: '' } };
    expect(() => renderPromptForInference(noTemplate, chat)).toThrow(expect.objectContaining({ code: 'NO_CHAT_TEMPLATE' }));
    const broken = { ...model, tokenizer: { ...model.tokenizer, chatTemplate: '{% for m in messages %}' } };
    expect(() => renderPromptForInference(broken, chat)).toThrow(expect.objectContaining({ code: 'TEMPLATE_ERROR' }));
    const raising = { ...model, tokenizer: { ...model.tokenizer, chatTemplate: "{{ raise_exception('no system role') }}" } };
    expect(() => renderPromptForInference(raising, chat)).toThrow(/no system role/);
  });
});

describe('token estimates of the data toolkit', () => {
  it('counts nodeai-tiny examples exactly as the chat template and tokenizer encode them', async () => {
    const { byteTokenizer, countExampleTokens } = await import('../datasets/index.ts');
    const examples = [
      [{ role: 'user' as const, content: 'Hi' }, { role: 'assistant' as const, content: 'Hello, how can I help?' }],
      [
        { role: 'system' as const, content: 'Be brief. Ünïcode ✓' },
        { role: 'user' as const, content: 'Where is my order?' },
        { role: 'assistant' as const, content: 'Your number?' },
        { role: 'user' as const, content: '42' },
        { role: 'assistant' as const, content: 'It ships today.' },
      ],
    ];
    for (const messages of examples) {
      const seq = encodeChatForTraining(model, tok, messages);
      expect(countExampleTokens(byteTokenizer, { messages }).total).toBe(seq.tokens.length);
    }
  });
});

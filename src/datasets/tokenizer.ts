import { contentText, isPreferenceExample, type ChatExample, type Example } from './types.ts';

/**
 * Counts tokens the way a model sees them. The OpenAI encodings come from gpt-tokenizer; a local
 * model plugs its own (the trainer's tokenizer and chat template) through this interface.
 */
export interface Tokenizer {
  readonly name: string;
  countTokens(text: string): number;
  /**
   * Tokens the chat format adds around messages. Absent means OpenAI's: 3 per message plus the
   * role, 1 more for a `name`, and 3 to prime the reply (the cookbook's count).
   */
  readonly chatFormat?: ChatFormat;
  /** Exact count of a whole conversation (e.g. render the model's chat template, then encode). */
  countChat?(example: ChatExample): number;
}

export interface ChatFormat {
  perMessage: number;
  perName: number;
  perConversation: number;
  /** Whether the role name is spelled out in text (OpenAI) or is a single special token. */
  countRole: boolean;
}

export const openAIChatFormat: ChatFormat = { perMessage: 3, perName: 1, perConversation: 3, countRole: true };

/**
 * UTF-8 bytes, one token each: how a byte-level model (the built-in `nodeai-tiny`) reads text.
 * Its ChatML template wraps each message as `<|im_start|>{role}\n{content}<|im_end|>\n`: the role
 * spelled out in bytes plus four tokens (two specials, two newlines), and nothing per conversation.
 * A trainer test checks this count against the real template and tokenizer.
 */
export const byteTokenizer: Tokenizer = {
  name: 'bytes',
  countTokens: (text) => Buffer.byteLength(text, 'utf8'),
  chatFormat: { perMessage: 4, perName: 0, perConversation: 0, countRole: true },
};

export type EncodingName = 'o200k_base' | 'cl100k_base';

// User text may contain strings like <|endoftext|>: count them as text, never refuse the example.
const plainText = { disallowedSpecial: new Set<string>() };

const MERGE_CACHE_ENTRIES = 20_000;

const encodings = new Map<EncodingName, Promise<Tokenizer>>();

/** An OpenAI encoding, loaded on first use: its tables take a moment and ~100 MB, so `data check` without tokens never pays for them. */
export function openAITokenizer(encoding: EncodingName): Promise<Tokenizer> {
  let t = encodings.get(encoding);
  if (!t) {
    const load = encoding === 'o200k_base' ? import('gpt-tokenizer/encoding/o200k_base') : import('gpt-tokenizer/encoding/cl100k_base');
    t = load.then((m) => {
      // The default 100k-entry merge cache costs tens of MB over a large file for little speed.
      m.setMergeCacheSize(MERGE_CACHE_ENTRIES);
      return { name: encoding, countTokens: (text: string) => m.countTokens(text, plainText) };
    });
    encodings.set(encoding, t);
  }
  return t;
}

export interface ExampleTokens {
  /** Every token of the example as trained (for DPO: the input and both outputs). */
  total: number;
  /** Tokens of assistant messages (for DPO: the preferred output). */
  assistant: number;
}

// Roles are a handful of words counted once per message: remember each one's count per tokenizer.
const roleCounts = new WeakMap<Tokenizer, Map<string, number>>();

function chatTokens(t: Tokenizer, e: ChatExample): ExampleTokens {
  const f = t.chatFormat ?? openAIChatFormat;
  const exact = t.countChat;
  let roles = roleCounts.get(t);
  if (!roles) roleCounts.set(t, (roles = new Map()));
  let total = 0;
  let assistant = 0;
  for (const m of e.messages) {
    const isAssistant = m.role === 'assistant';
    if (exact && !isAssistant) continue;
    // An assistant message's text counts in both figures: encode it once, not once per figure.
    const text = contentText(m.content);
    const textTokens = text ? t.countTokens(text) : 0;
    const callTokens = m.tool_calls ? t.countTokens(JSON.stringify(m.tool_calls)) : 0;
    if (isAssistant) assistant += textTokens + callTokens;
    if (exact) continue;
    total += f.perMessage + textTokens + callTokens;
    if (f.countRole) {
      let r = roles.get(m.role);
      if (r === undefined) roles.set(m.role, (r = t.countTokens(m.role)));
      total += r;
    }
    if (m.name) total += f.perName + t.countTokens(m.name);
    if (m.function_call) total += t.countTokens(JSON.stringify(m.function_call));
  }
  if (exact) return { total: exact.call(t, e), assistant };
  if (e.tools) total += t.countTokens(JSON.stringify(e.tools));
  return { total: total + f.perConversation, assistant };
}

/** Token counts of one example; a DPO line counts its prompt with each of the two answers. */
export function countExampleTokens(t: Tokenizer, e: Example): ExampleTokens {
  if (!isPreferenceExample(e)) return chatTokens(t, e);
  const preferred = chatTokens(t, { messages: [...e.input.messages, ...e.preferred_output], tools: e.input.tools });
  const rejected = chatTokens(t, { messages: [...e.input.messages, ...e.non_preferred_output], tools: e.input.tools });
  return { total: preferred.total + rejected.total, assistant: preferred.assistant };
}

// Chat formatting with the model's own Jinja chat template (@huggingface/jinja), shared by
// training and inference so the model is trained on exactly the text it is later prompted with.

import { Template } from '@huggingface/jinja';
import type { LlamaModel, TokenizerSpec, TrainingSequence } from './llama-model.ts';
import type { Tokenizer } from './tokenizer.ts';
import { NodeAIError } from '../nodeai-error.ts';

export type ChatContentPart = { type: 'text'; text: string } | { type: string; [k: string]: unknown };

/** An OpenAI-style chat message, as fine-tuning JSONL lines carry them. */
export interface ChatMessage {
  role: string;
  content?: string | null | ChatContentPart[];
  name?: string;
  tool_calls?: unknown[];
  tool_call_id?: string;
  /** Assistant messages only: 0 excludes the message from the loss (OpenAI's `weight`). */
  weight?: number;
}

export interface ChatFormatOptions {
  /** OpenAI-style tool definitions, passed to the template as `tools`. */
  tools?: unknown[];
}

export type ChatFormatErrorCode = 'NO_CHAT_TEMPLATE' | 'TEMPLATE_ERROR' | 'TEMPLATE_NOT_INCREMENTAL' | 'CONTEXT_OVERFLOW';

export class ChatFormatError extends NodeAIError {
  override readonly name = 'ChatFormatError';
  constructor(
    override readonly code: ChatFormatErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    // A prompt longer than the context is the request's to fix; a broken template is the model's.
    super(code, message, { status: code === 'CONTEXT_OVERFLOW' ? 400 : 500, cause: options?.cause });
  }
}

/** An example (or prompt) longer than the model's context. */
export class ContextOverflowError extends ChatFormatError {
  constructor(
    readonly tokens: number,
    readonly contextLength: number,
    what = 'the example',
  ) {
    super(
      'CONTEXT_OVERFLOW',
      `${what} is ${tokens} tokens, ${tokens - contextLength} more than the model's context of ${contextLength} tokens; ` +
        'shorten it or split it into several examples',
    );
  }
}

const templates = new Map<string, Template>();

function compile(source: string): Template {
  let t = templates.get(source);
  if (!t) {
    try {
      t = new Template(source);
    } catch (e) {
      throw new ChatFormatError('TEMPLATE_ERROR', `the model's chat template does not parse: ${(e as Error).message}`, { cause: e });
    }
    if (templates.size > 16) templates.clear();
    templates.set(source, t);
  }
  return t;
}

function contentText(content: ChatMessage['content']): string {
  if (content == null) return '';
  if (typeof content === 'string') return content;
  return content.map((p) => (p.type === 'text' && typeof p.text === 'string' ? p.text : '')).join('');
}

/** What the template sees: text content, no `weight` (a training-only field). */
function templateMessages(messages: ChatMessage[]): Array<Record<string, unknown>> {
  return messages.map(({ weight: _weight, content, ...rest }) => {
    const m: Record<string, unknown> = { ...rest, content: content == null && rest.tool_calls ? null : contentText(content) };
    return m;
  });
}

function specialText(spec: TokenizerSpec, id: number | undefined): string {
  return id === undefined ? '' : (spec.tokens[id] ?? '');
}

export interface RenderChatOptions extends ChatFormatOptions {
  addGenerationPrompt: boolean;
}

/** Renders messages with the model's chat template (`tokenizer.chat_template`). */
export function renderChat(spec: TokenizerSpec, messages: ChatMessage[], options: RenderChatOptions): string {
  if (!spec.chatTemplate) {
    throw new ChatFormatError('NO_CHAT_TEMPLATE', "the model has no chat template (GGUF 'tokenizer.chat_template'); pick a chat/instruct base model");
  }
  const template = compile(spec.chatTemplate);
  try {
    return template.render({
      messages: templateMessages(messages),
      ...(options.tools && options.tools.length ? { tools: options.tools } : {}),
      add_generation_prompt: options.addGenerationPrompt,
      bos_token: specialText(spec, spec.bosId),
      eos_token: specialText(spec, spec.eosId),
      // raise_exception is built into @huggingface/jinja.
    });
  } catch (e) {
    if (e instanceof ChatFormatError) throw e;
    throw new ChatFormatError('TEMPLATE_ERROR', `rendering the chat template failed: ${(e as Error).message}`, { cause: e });
  }
}

/** The text to prompt the model with: the conversation so far plus the assistant-turn opener. */
export function renderPromptForInference(model: LlamaModel | TokenizerSpec, messages: ChatMessage[], options: ChatFormatOptions = {}): string {
  const spec = 'tokenizer' in model ? model.tokenizer : model;
  return renderChat(spec, messages, { ...options, addGenerationPrompt: true });
}

/** Whether a prompt gets BOS prepended by the tokenizer (llama.cpp's add_bos default per vocabulary). */
export function addsBos(spec: TokenizerSpec): boolean {
  return spec.bosId !== undefined && (spec.addBos ?? spec.model === 'llama');
}

/** Tokenizes rendered chat text the way training and inference both do (special tokens parsed, BOS if the vocab adds it). */
export function encodeRendered(spec: TokenizerSpec, tokenizer: Tokenizer, text: string): number[] {
  const tokens = tokenizer.encode(text, { special: true });
  if (addsBos(spec) && tokens[0] !== spec.bosId) tokens.unshift(spec.bosId!);
  return tokens;
}

/** Tokens of the inference prompt for `messages`. */
export function encodePromptForInference(
  model: LlamaModel | TokenizerSpec,
  tokenizer: Tokenizer,
  messages: ChatMessage[],
  options: ChatFormatOptions = {},
): number[] {
  const spec = 'tokenizer' in model ? model.tokenizer : model;
  return encodeRendered(spec, tokenizer, renderPromptForInference(spec, messages, options));
}

function commonPrefix(a: number[], b: number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

export interface EncodeChatOptions extends ChatFormatOptions {
  /** Longest sequence allowed; the model's context length by default. */
  maxTokens?: number;
}

/**
 * Renders and tokenizes one chat example for training. `lossMask[i]` is 1 when token i is a
 * training target: the content tokens of assistant messages whose `weight` is not 0, plus the
 * token that ends their turn (e.g. `<|im_end|>`), so the model learns to stop. System, user, tool
 * and template tokens (role headers, the newline after the end token) are 0.
 *
 * Token positions come from rendering prefixes of the conversation and matching their tokens
 * against the whole example's, so any template that renders incrementally works, with any
 * tokenizer. Throws {@link ContextOverflowError} when the example does not fit.
 */
export function encodeChatForTraining(
  model: LlamaModel,
  tokenizer: Tokenizer,
  messages: ChatMessage[],
  options: EncodeChatOptions = {},
): TrainingSequence {
  const spec = model.tokenizer;
  const render = (upTo: number, addGenerationPrompt: boolean) =>
    renderChat(spec, messages.slice(0, upTo), { tools: options.tools, addGenerationPrompt });
  const full = render(messages.length, false);
  const tokens = encodeRendered(spec, tokenizer, full);
  const limit = options.maxTokens ?? model.config.contextLength;
  if (tokens.length > limit) throw new ContextOverflowError(tokens.length, limit);

  const mask = new Uint8Array(tokens.length);
  const positionOf = (text: string, what: string) => {
    if (!full.startsWith(text)) {
      throw new ChatFormatError(
        'TEMPLATE_NOT_INCREMENTAL',
        `the chat template renders ${what} differently from the whole conversation, so assistant tokens cannot be located`,
      );
    }
    return commonPrefix(encodeRendered(spec, tokenizer, text), tokens);
  };
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m.role !== 'assistant' || m.weight === 0) continue;
    const start = positionOf(render(i, true), `the prompt before message ${i + 1}`);
    const end = positionOf(render(i + 1, false), `messages 1–${i + 1}`);
    // Stop at the end-of-turn token: what follows it (a newline) is template, not answer.
    let last = end - 1;
    while (last >= start && !tokenizer.isEndOfGeneration(tokens[last])) last--;
    if (last < start) last = end - 1;
    for (let t = start; t <= last; t++) mask[t] = 1;
  }
  return { tokens: Int32Array.from(tokens), lossMask: mask };
}

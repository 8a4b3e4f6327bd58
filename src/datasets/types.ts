// The normalized shapes every reader produces and every later layer (trainer, providers, nodes)
// consumes. They follow OpenAI's fine-tuning JSONL so a converted file uploads unchanged.

export type Role = 'system' | 'developer' | 'user' | 'assistant' | 'tool' | 'function';

export interface TextPart {
  type: 'text';
  text: string;
}
export interface ImagePart {
  type: 'image_url';
  image_url: { url: string; detail?: string };
}
export type ContentPart = TextPart | ImagePart;

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: Role;
  /** null only on an assistant message that carries tool_calls / function_call. */
  content: string | ContentPart[] | null;
  name?: string;
  /** Assistant messages only: 0 excludes the message from the loss. */
  weight?: 0 | 1;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  function_call?: { name: string; arguments: string };
}

export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

export interface ChatExample {
  messages: ChatMessage[];
  tools?: ToolDefinition[];
  parallel_tool_calls?: boolean;
}

/** A DPO preference line: the same conversation answered twice, the first answer preferred. */
export interface PreferenceExample {
  input: { messages: ChatMessage[]; tools?: ToolDefinition[]; parallel_tool_calls?: boolean };
  preferred_output: ChatMessage[];
  non_preferred_output: ChatMessage[];
}

/** How the file wrote its examples; `completion` lines are normalized to chat (user → assistant). */
export type DataFormat = 'chat' | 'completion' | 'dpo';

/** How the file is laid out on disk. */
export type FileType = 'jsonl' | 'json' | 'csv' | 'tsv';

export type Example = ChatExample | PreferenceExample;

export const isPreferenceExample = (e: Example): e is PreferenceExample => 'preferred_output' in e;

/** Text of a message's content: string content as is, text parts joined, images left out. */
export function contentText(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  if (!content) return '';
  let out = '';
  for (const part of content) if (part.type === 'text') out += part.text;
  return out;
}

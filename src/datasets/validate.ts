import { hints, issue, UNKNOWN_FORMAT, type IssueSink } from './issues.ts';
import type { ChatExample, ChatMessage, DataFormat, Example, PreferenceExample } from './types.ts';

/** The format a file settles on with its first recognizable example; later lines must match. */
export interface FormatState {
  format: DataFormat | null;
  line: number;
}

export const newFormatState = (): FormatState => ({ format: null, line: 0 });

export interface ValidExample {
  format: DataFormat;
  example: Example;
}

const ROLES: ReadonlySet<string> = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);
const MESSAGE_KEYS: ReadonlySet<string> = new Set(['role', 'content', 'name', 'weight', 'tool_calls', 'tool_call_id', 'function_call']);
const ROLE_LIST = 'system, developer, user, assistant, tool';

/** True when the string has no visible character; unlike trim() it allocates nothing. */
function isBlankText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 32 && c !== 0xa0 && c !== 0x3000 && c !== 0xfeff && !(c >= 0x2000 && c <= 0x200b)) return false;
  }
  return true;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

function formatOf(v: Record<string, unknown>): DataFormat | null {
  if ('messages' in v) return 'chat';
  if ('input' in v || 'preferred_output' in v || 'non_preferred_output' in v) return 'dpo';
  if ('prompt' in v || 'completion' in v) return 'completion';
  return null;
}

const formatName: Record<DataFormat, string> = { chat: 'chat ("messages")', completion: 'completion ("prompt"/"completion")', dpo: 'DPO preference ("input"/"preferred_output")' };

interface MessagesSummary {
  ok: boolean;
  system: boolean;
  user: boolean;
  assistant: boolean;
  trainable: boolean;
}

function checkContentParts(parts: unknown[]): boolean {
  for (const p of parts) {
    if (!isObject(p)) return false;
    if (p.type === 'text') {
      if (typeof p.text !== 'string') return false;
    } else if (p.type === 'image_url') {
      if (!isObject(p.image_url) || typeof p.image_url.url !== 'string') return false;
    } else return false;
  }
  return true;
}

function checkToolCalls(calls: unknown): boolean {
  if (!Array.isArray(calls) || calls.length === 0) return false;
  for (const c of calls) {
    if (!isObject(c) || typeof c.id !== 'string' || c.type !== 'function' || !isObject(c.function)) return false;
    if (typeof c.function.name !== 'string' || typeof c.function.arguments !== 'string') return false;
  }
  return true;
}

/**
 * Validates a conversation. `dpoInput` relaxes the rules for a DPO prompt, which ends before the
 * answer and so has no assistant message of its own.
 */
function checkMessages(messages: unknown, line: number, prefix: string, sink: IssueSink, dpoInput: boolean): MessagesSummary {
  const s: MessagesSummary = { ok: false, system: false, user: false, assistant: false, trainable: false };
  if (!Array.isArray(messages) || messages.length === 0) {
    sink(
      issue(
        dpoInput ? 'invalid_dpo' : 'missing_messages_list',
        line,
        prefix,
        messages === undefined ? `Missing '${prefix}'` : Array.isArray(messages) ? `'${prefix}' is empty` : `'${prefix}' must be a list of messages, found ${typeName(messages)}`,
        `Give '${prefix}' as a non-empty list: [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]`,
      ),
    );
    return s;
  }
  let ok = true;
  let started = false; // a non-system message has been seen
  let prevRole = '';
  let prevHadToolCalls = false;
  // Hot loop (every message of every example): no closures in it, as tsx (esbuild keepNames) wraps
  // each closure it creates in a name-setting defineProperty — ~20% of a large check in a CPU
  // profile — and paths/messages are template strings built only in the branch that reports.
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (!isObject(m)) {
      sink(issue('data_type', line, `${prefix}[${i}]`, `Message ${i} must be an object, found ${typeName(m)}`, 'Write each message as {"role": "...", "content": "..."}'));
      ok = false;
      continue;
    }
    for (const key in m) {
      if (!MESSAGE_KEYS.has(key)) {
        sink(issue('message_unrecognized_key', line, `${prefix}[${i}].${key}`, `Message ${i} has an unrecognized key '${key}'`, 'Use only role, content, name, weight, tool_calls, tool_call_id and function_call; remove the others'));
        ok = false;
      }
    }
    const role = m.role;
    const hasCalls = m.tool_calls !== undefined || m.function_call !== undefined;
    if (role === undefined) {
      sink(issue('message_missing_key', line, `${prefix}[${i}].role`, `Message ${i} has no 'role'`, `Add "role": one of ${ROLE_LIST}`));
      ok = false;
    } else if (typeof role !== 'string' || !ROLES.has(role)) {
      sink(issue('unrecognized_role', line, `${prefix}[${i}].role`, `Message ${i} has an unrecognized role ${JSON.stringify(role)}`, `Use one of ${ROLE_LIST}`));
      ok = false;
    }
    const content = m.content;
    if (content === undefined && !hasCalls) {
      sink(issue('message_missing_key', line, `${prefix}[${i}].content`, `Message ${i} has no 'content'`, 'Add "content" with the message text'));
      ok = false;
    } else if (typeof content === 'string') {
      if ((role === 'assistant' || role === 'user') && isBlankText(content)) {
        sink(issue('empty_content', line, `${prefix}[${i}].content`, `Message ${i} (${role}) has empty content`, 'Write the text of the message, or remove the message'));
      }
    } else if (content === null || content === undefined) {
      if (!(role === 'assistant' && hasCalls)) {
        sink(issue('missing_content', line, `${prefix}[${i}].content`, `Message ${i} has null content`, 'Give the message text; only an assistant message with tool_calls may have null content'));
        ok = false;
      }
    } else if (!Array.isArray(content) || !checkContentParts(content)) {
      sink(issue('missing_content', line, `${prefix}[${i}].content`, `Message ${i} content must be text, found ${typeName(content)}`, 'Give content as a string, or as a list of {"type": "text", "text": "..."} parts'));
      ok = false;
    }
    if (m.name !== undefined && typeof m.name !== 'string') {
      sink(issue('data_type', line, `${prefix}[${i}].name`, `Message ${i} 'name' must be a string, found ${typeName(m.name)}`, 'Give name as a string or remove it'));
      ok = false;
    }
    if (m.weight !== undefined) {
      if (role !== 'assistant') {
        sink(issue('invalid_weight', line, `${prefix}[${i}].weight`, `Message ${i} is a ${String(role)} message; only assistant messages may have a weight`, 'Remove "weight" from it'));
        ok = false;
      } else if (m.weight !== 0 && m.weight !== 1) {
        sink(issue('invalid_weight', line, `${prefix}[${i}].weight`, `Message ${i} has weight ${JSON.stringify(m.weight)}; it must be 0 or 1`, 'Use 1 to train on the message, 0 to skip it'));
        ok = false;
      }
    }
    if (m.tool_calls !== undefined && (role !== 'assistant' || !checkToolCalls(m.tool_calls))) {
      sink(
        issue(
          'invalid_tool_calls',
          line,
          `${prefix}[${i}].tool_calls`,
          role !== 'assistant' ? `Message ${i} is a ${String(role)} message; only assistant messages may have tool_calls` : `Message ${i} has malformed tool_calls`,
          'Write tool_calls as [{"id": "...", "type": "function", "function": {"name": "...", "arguments": "{...}"}}] on an assistant message',
        ),
      );
      ok = false;
    }
    if (role === 'system' || role === 'developer') {
      s.system = true;
      if (started) {
        sink(issue('role_order', line, `${prefix}[${i}].role`, `Message ${i} is a ${role} message after the conversation started`, 'Put system messages first, before any user or assistant message'));
        ok = false;
      }
    } else if (typeof role === 'string' && ROLES.has(role)) {
      started = true;
      if (role === 'user') s.user = true;
      else if (role === 'assistant') {
        s.assistant = true;
        if (m.weight !== 0) s.trainable = true;
      } else if (role === 'tool' && !(prevHadToolCalls || prevRole === 'tool')) {
        sink(issue('role_order', line, `${prefix}[${i}].role`, `Message ${i} is a tool result without an assistant tool call before it`, 'Put tool messages right after the assistant message whose tool_calls they answer'));
        ok = false;
      }
    }
    prevRole = typeof role === 'string' ? role : '';
    prevHadToolCalls = role === 'assistant' && m.tool_calls !== undefined;
  }
  s.ok = ok;
  return s;
}

function checkTools(tools: unknown, line: number, path: string, sink: IssueSink): boolean {
  if (tools === undefined) return true;
  let ok = Array.isArray(tools);
  if (ok) {
    for (const t of tools as unknown[]) {
      if (!isObject(t) || t.type !== 'function' || !isObject(t.function) || typeof t.function.name !== 'string') ok = false;
    }
  }
  if (!ok) sink(issue('invalid_tools', line, path, `'${path}' must be a list of function tools`, 'Write tools as [{"type": "function", "function": {"name": "...", "parameters": {...}}}]'));
  return ok;
}

function conversationWarnings(s: MessagesSummary, line: number, path: string, sink: IssueSink) {
  if (!s.system) sink(issue('missing_system_message', line, path, 'Example has no system message', 'Add a system message if the model will get one when it is used; skip this warning otherwise'));
  if (!s.user) sink(issue('missing_user_message', line, path, 'Example has no user message', 'Add the user turn that the assistant answers'));
}

function validateChat(v: Record<string, unknown>, line: number, sink: IssueSink): ChatExample | null {
  const s = checkMessages(v.messages, line, 'messages', sink, false);
  const toolsOk = checkTools(v.tools, line, 'tools', sink);
  if (Array.isArray(v.messages) && v.messages.length > 0 && !s.assistant) {
    sink(issue('example_missing_assistant_message', line, 'messages', 'Example has no assistant message', 'Add at least one assistant message: it is what the model learns to write'));
    return null;
  }
  if (!s.ok || !toolsOk) return null;
  conversationWarnings(s, line, 'messages', sink);
  if (!s.trainable) sink(issue('no_trainable_messages', line, 'messages', 'Every assistant message has weight 0, so nothing in this example is trained', 'Set weight 1 (or remove weight) on at least one assistant message'));
  const out: ChatExample = { messages: v.messages as ChatMessage[] };
  if (v.tools !== undefined) out.tools = v.tools as ChatExample['tools'];
  if (typeof v.parallel_tool_calls === 'boolean') out.parallel_tool_calls = v.parallel_tool_calls;
  return out;
}

function validateCompletion(v: Record<string, unknown>, line: number, sink: IssueSink): ChatExample | null {
  let ok = true;
  for (const key of ['prompt', 'completion'] as const) {
    const x = v[key];
    if (typeof x === 'string') continue;
    ok = false;
    if (x === undefined || x === null) sink(issue('missing_content', line, key, `Completion example has no '${key}'`, `Add "${key}" as a string`));
    else sink(issue('data_type', line, key, `'${key}' must be a string, found ${typeName(x)}`, `Give "${key}" as a string`));
  }
  if (!ok) return null;
  const prompt = v.prompt as string;
  const completion = v.completion as string;
  if (isBlankText(completion)) sink(issue('empty_content', line, 'completion', "The 'completion' is empty", 'Write the answer the model should learn'));
  return { messages: [{ role: 'user', content: prompt }, { role: 'assistant', content: completion }] };
}

function validateOutput(out: unknown, line: number, key: string, sink: IssueSink): boolean {
  const m = Array.isArray(out) && out.length === 1 ? out[0] : undefined;
  if (!isObject(m) || m.role !== 'assistant' || !(typeof m.content === 'string' || (Array.isArray(m.content) && checkContentParts(m.content)))) {
    sink(issue('invalid_dpo', line, key, `'${key}' must be a list with exactly one assistant message`, `Write "${key}": [{"role": "assistant", "content": "..."}]`));
    return false;
  }
  return true;
}

function validateDpo(v: Record<string, unknown>, line: number, sink: IssueSink): PreferenceExample | null {
  const input = v.input;
  let ok = true;
  let s: MessagesSummary | null = null;
  if (!isObject(input)) {
    sink(issue('invalid_dpo', line, 'input', input === undefined ? "DPO example has no 'input'" : `'input' must be an object, found ${typeName(input)}`, 'Write "input": {"messages": [{"role": "user", "content": "..."}]}'));
    ok = false;
  } else {
    s = checkMessages(input.messages, line, 'input.messages', sink, true);
    ok = s.ok && checkTools(input.tools, line, 'input.tools', sink);
    const msgs = input.messages as unknown[];
    if (s.ok && isObject(msgs[msgs.length - 1]) && (msgs[msgs.length - 1] as Record<string, unknown>).role !== 'user') {
      sink(issue('invalid_dpo', line, `input.messages[${msgs.length - 1}]`, 'The DPO input must end with a user message', 'End input.messages with the user turn that the two outputs answer'));
      ok = false;
    }
  }
  ok = validateOutput(v.preferred_output, line, 'preferred_output', sink) && ok;
  ok = validateOutput(v.non_preferred_output, line, 'non_preferred_output', sink) && ok;
  if (!ok) return null;
  if (s && !s.system) sink(issue('missing_system_message', line, 'input.messages', 'Example has no system message', 'Add a system message if the model will get one when it is used; skip this warning otherwise'));
  const pref = (v.preferred_output as ChatMessage[])[0];
  const non = (v.non_preferred_output as ChatMessage[])[0];
  if (JSON.stringify(pref.content) === JSON.stringify(non.content)) {
    sink(issue('identical_preference', line, 'non_preferred_output', 'The preferred and non-preferred outputs are the same', 'Make the non-preferred output the worse answer you want the model to avoid'));
  }
  return { input: input as PreferenceExample['input'], preferred_output: v.preferred_output as ChatMessage[], non_preferred_output: v.non_preferred_output as ChatMessage[] };
}

/**
 * Validates one parsed line and returns it normalized (completion → chat), or null when it has
 * errors. Every problem goes to `sink`; the file's format is fixed by its first recognizable
 * example, and an example in another format is a `mixed_formats` error.
 */
export function validateRecord(value: unknown, line: number, state: FormatState, sink: IssueSink): ValidExample | null {
  if (!isObject(value)) {
    sink(issue('data_type', line, null, `Each example must be a JSON object, found ${typeName(value)}`, 'Write each example as one JSON object: {"messages": [...]}'));
    return null;
  }
  let format = formatOf(value);
  if (format === null) {
    if (state.format === 'chat') {
      sink(issue('missing_messages_list', line, 'messages', "Example has no 'messages' list", 'Add "messages": [{"role": "user", ...}, {"role": "assistant", ...}]'));
    } else {
      sink(issue('unknown_format', line, null, UNKNOWN_FORMAT, hints.unknownFormat));
    }
    return null;
  }
  if (state.format === null) {
    state.format = format;
    state.line = line;
  } else if (format !== state.format) {
    sink(
      issue(
        'mixed_formats',
        line,
        null,
        `Example is in ${formatName[format]} format, but the file started in ${formatName[state.format]} format on line ${state.line}`,
        'Use one format for the whole file: convert these lines, or move them to their own file',
      ),
    );
    return null;
  }
  format = state.format;
  const example = format === 'chat' ? validateChat(value, line, sink) : format === 'completion' ? validateCompletion(value, line, sink) : validateDpo(value, line, sink);
  return example ? { format, example } : null;
}

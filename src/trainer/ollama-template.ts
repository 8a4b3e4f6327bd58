// The Ollama TEMPLATE (a Go text/template) and stop tokens for a model's Jinja chat template, so a
// model exported to Ollama is prompted with the same text it was trained on.
//
// Ollama's template data (docs/template.md and template/template.go in github.com/ollama/ollama):
// `.Messages` (each with `.Role`, `.Content`; system messages included, consecutive messages of one
// role merged with "\n\n"), `.System` (all system messages joined), `.Response` (empty when
// prompting). Ollama's template functions have no string operations (trim, replace, split), so only
// templates whose output is a plain layout of the message texts can be expressed.
//
// A family is recognised by its markers, then confirmed by rendering the model's own Jinja
// template (the training renderer, chat-format.ts) on probe conversations and comparing with the
// layout the family's Go template writes. A template that has a family's markers but renders the
// probes differently is reported as unknown, with what differed: never guessed. What the probes
// show is copied into the Go template as text: a default system prompt (Qwen2.5, SmolLM2), a system
// block around the system prompt (Llama 3.1's preamble, SmolLM3's metadata; a date in it is the day
// of the export), text after the assistant's opener (Qwen3.5's "<think>\n").
//
// BOS is left out of every Go template: Ollama's tokenizer adds it when the vocabulary says so
// (tokenizer/vocabulary.go, addSpecials), as llama.cpp does for the training prompt
// (chat-format.ts, encodeRendered); the probes render with an empty bos_token.
//
// Where Ollama cannot say what the Jinja template says (left as they are, on purpose):
// - tools: tool definitions and tool calls are not rendered (Ollama writes tool JSON with Go's
//   encoder, which spaces and orders keys unlike Jinja's tojson, so it could not match anyway);
// - Llama 3 and Gemma trim message content; Ollama has no trim, so text with whitespace at its ends
//   keeps it;
// - Ollama merges consecutive messages of one role with "\n\n" (template.go, collate);
// - Qwen3 and Qwen3.5 drop the <think> part of earlier assistant messages; Ollama does the same
//   only for models of family qwen3 (server/routes.go, filterThinkTags), so a Qwen3.5 model sees
//   the thinking of earlier answers;
// - SmolLM3 takes "/think" and "/no_think" out of the system prompt and switches mode; here the
//   system prompt is written as sent, in the mode the probe rendered (thinking).
// The Go conditions rely on `and` stopping at its first false argument (Go 1.18 and later).

import { renderChat, type ChatMessage } from './chat-format.ts';

export type OllamaTemplate = { family: string; template: string; stop: string[] };
export type NoOllamaTemplate = { family: null; note: string };

/** Probe texts: distinct, without whitespace at the ends (Llama 3 and Gemma trim message content). */
const PROBE_MARK = 'NODEAI-PROBE-';
const PROBE = { system: `${PROBE_MARK}SYSTEM`, user1: `${PROBE_MARK}USER-1`, assistant: `${PROBE_MARK}ANSWER`, user2: `${PROBE_MARK}USER-2` };
const PROBE_TURNS: ChatMessage[] = [
  { role: 'user', content: PROBE.user1 },
  { role: 'assistant', content: PROBE.assistant },
  { role: 'user', content: PROBE.user2 },
];
const PROBE_WITH_SYSTEM: ChatMessage[] = [{ role: 'system', content: PROBE.system }, ...PROBE_TURNS];

/**
 * Go template text that prints `s` verbatim: as is, unless it holds `{{` (then as a quoted
 * constant). The templates put no whitespace-trimming `{{-` next to such text, so none is lost.
 */
const goLiteral = (s: string) => (s.includes('{{') ? `{{ ${JSON.stringify(s)} }}` : s);
/** Go template condition: the first message is a system message. */
const FIRST_IS_SYSTEM = '(and .Messages (eq (index .Messages 0).Role "system"))';

/** The model's Jinja template rendered as training renders it, without BOS; an Error when it throws. */
type Render = (messages: ChatMessage[]) => string | Error;

interface Layout {
  template: string;
  stop: string[];
  /** Set when this variant has a name of its own (Llama 3.1's system preamble). */
  variant?: string;
}

/** What the Jinja template renders for the probe chats without and with a system message. */
interface Probes {
  turns: string;
  withSystem: string | Error;
}

interface Family {
  family: string;
  /** Every one must occur in the Jinja template text. */
  markers: string[];
  /** The layout the probes show, or why they fit none of this family's. */
  layout(probes: Probes): Layout | string;
}

/** Where two renderings part, for the note. */
function firstDifference(expected: string, got: string): string {
  let i = 0;
  while (i < expected.length && expected[i] === got[i]) i++;
  return `at character ${i}, expected ${JSON.stringify(expected.slice(i, i + 40))} but the chat template renders ${JSON.stringify(got.slice(i, i + 40))}`;
}

/**
 * A family whose messages are turns of one shape, `open ROLE mid CONTENT close`, and whose prompt
 * ends with the assistant's opener. What comes before the turns (a system turn, or a system block
 * with a preamble and a default prompt: Qwen2.5, SmolLM2/3, Llama 3.1) and what follows the opener
 * (Qwen3.5's "<think>\n") are read from the probes and written into the Go template as text.
 */
function turnFamily(
  family: string,
  markers: string[],
  turn: { open: string; mid: string; close: string },
  stop: string[],
  variant?: (head: string) => string | undefined,
): Family {
  const text = (role: string, content: string) => turn.open + role + turn.mid + content + turn.close;
  const opener = turn.open + 'assistant' + turn.mid;
  const body = text('user', PROBE.user1) + text('assistant', PROBE.assistant) + text('user', PROBE.user2) + opener;
  const shape = JSON.stringify(text('ROLE', 'TEXT'));
  return {
    family,
    markers,
    layout({ turns, withSystem }) {
      const at = turns.indexOf(body);
      if (at < 0) return `the turns are not laid out as ${shape} followed by ${JSON.stringify(opener)}`;
      const head = turns.slice(0, at);
      const tail = turns.slice(at + body.length);
      if (tail.includes(turn.open)) return `the prompt ends with ${JSON.stringify(tail)} after the assistant's opener`;
      if (withSystem instanceof Error) return `rendering a chat with a system message failed (${withSystem.message})`;
      const expectedEnd = body + tail;
      if (!withSystem.endsWith(expectedEnd)) return `it renders a chat with a system message differently (${firstDifference(expectedEnd, withSystem.slice(-expectedEnd.length))})`;
      const systemHead = withSystem.slice(0, withSystem.length - expectedEnd.length).split(PROBE.system);
      if (systemHead.length === 1) return 'it leaves the system message out';
      if (systemHead.length > 2) return 'it writes the system message more than once';
      const [beforeSystem, afterSystem] = systemHead;
      // What is copied as text must not hold the chat itself (a template that repeats a message elsewhere).
      if ([head, beforeSystem, afterSystem, tail].some((t) => t.includes(PROBE_MARK))) return 'it writes message text outside the turns';
      const template =
        `{{ if ${FIRST_IS_SYSTEM} }}${goLiteral(beforeSystem)}{{ (index .Messages 0).Content }}${goLiteral(afterSystem)}{{ else }}${goLiteral(head)}{{ end }}` +
        `{{ range $i, $m := .Messages }}{{ if or $i (ne .Role "system") }}${goLiteral(turn.open)}{{ .Role }}${goLiteral(turn.mid)}{{ .Content }}${goLiteral(turn.close)}{{ end }}{{ end }}` +
        goLiteral(opener + tail);
      return { template, stop, variant: variant?.(head) };
    },
  };
}

/** ChatML (Qwen2/2.5/3/3.5, SmolLM2/3, nodeai-tiny, …). */
const chatml = turnFamily('chatml', ['<|im_start|>', '<|im_end|>'], { open: '<|im_start|>', mid: '\n', close: '<|im_end|>\n' }, ['<|im_end|>', '<|im_start|>']);

/**
 * Llama 3 (a header per message) and Llama 3.1/3.2/3.3 (a system block always, with a preamble:
 * knowledge cutoff and date; 3.1 ends a tool-calling turn with <|eom_id|>). Llama 3.2's template
 * dates the preamble with strftime_now, so training prompts carry the day they were rendered on;
 * Ollama's templates cannot format a date that way, so the date the probe renders (the export day)
 * is written in. SmolLM3's system block is dated the same way.
 */
const llama3 = turnFamily(
  'llama3',
  ['<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
  { open: '<|start_header_id|>', mid: '<|end_header_id|>\n\n', close: '<|eot_id|>' },
  ['<|eot_id|>', '<|eom_id|>', '<|start_header_id|>', '<|end_header_id|>'],
  (head) => (head ? 'llama3.1' : undefined),
);

/** Phi-3/3.5: <|ROLE|>\nTEXT<|end|>\n. */
const phi3 = turnFamily('phi3', ['<|assistant|>', '<|end|>'], { open: '<|', mid: '|>\n', close: '<|end|>\n' }, [
  '<|end|>',
  '<|endoftext|>',
  '<|user|>',
  '<|assistant|>',
  '<|system|>',
]);

const gemmaTurns = (firstUserPrefix: string) =>
  `<start_of_turn>user\n${firstUserPrefix}${PROBE.user1}<end_of_turn>\n<start_of_turn>model\n${PROBE.assistant}<end_of_turn>\n` +
  `<start_of_turn>user\n${PROBE.user2}<end_of_turn>\n<start_of_turn>model\n`;

/**
 * Gemma 2/3: the assistant is "model"; Gemma 3 puts the system prompt and a blank line at the start
 * of the first user turn, Gemma 2 rejects system messages (the Go template folds them in as Gemma 3
 * does, which is also what Ollama's own Gemma templates do).
 */
const gemma: Family = {
  family: 'gemma',
  markers: ['<start_of_turn>', '<end_of_turn>'],
  layout({ turns, withSystem }) {
    if (turns !== gemmaTurns('')) return 'the turns are not laid out as <start_of_turn>user|model\\nTEXT<end_of_turn>\\n';
    const expected = gemmaTurns(`${PROBE.system}\n\n`);
    // Gemma 2's template raises on a system message; any other rendering must be Gemma 3's.
    if (!(withSystem instanceof Error) && withSystem !== expected) {
      return `it renders a chat with a system message differently (${firstDifference(expected, withSystem)})`;
    }
    const template =
      '{{- $system := "" }}{{- $hasSystem := false }}{{- $first := true }}' +
      '{{- range $i, $m := .Messages }}' +
      '{{- if and (eq $i 0) (eq .Role "system") }}{{- $system = .Content }}{{- $hasSystem = true }}' +
      '{{- else }}<start_of_turn>{{ if eq .Role "assistant" }}model{{ else }}{{ .Role }}{{ end }}\n' +
      '{{ if $first }}{{ if $hasSystem }}{{ $system }}\n\n{{ end }}{{ $first = false }}{{ end }}' +
      '{{ .Content }}<end_of_turn>\n{{ end }}{{- end }}<start_of_turn>model\n';
    return { template, stop: ['<end_of_turn>', '<start_of_turn>'] };
  },
};

const FAMILIES: Family[] = [chatml, llama3, gemma, phi3];
const FAMILY_NAMES = 'ChatML, Llama 3, Gemma, Phi-3';

const WRITE_YOUR_OWN =
  "The Modelfile gets no TEMPLATE, so Ollama picks a template by similarity to the GGUF's chat template, which may not match training; " +
  'write a TEMPLATE by hand (https://github.com/ollama/ollama/blob/main/docs/template.md) and check it with `ollama run` before relying on the model.';

function render(chatTemplate: string): Render {
  return (messages) => {
    try {
      return renderChat({ model: 'gpt2', tokens: [], chatTemplate }, messages, { addGenerationPrompt: true });
    } catch (e) {
      return e as Error;
    }
  };
}

/**
 * The Ollama TEMPLATE and `stop` parameters for a model's Jinja chat template (GGUF
 * `tokenizer.chat_template`), or `family: null` with a note saying why there is none and what to do.
 */
export function ollamaTemplateFor(chatTemplate: string | undefined): OllamaTemplate | NoOllamaTemplate {
  if (!chatTemplate) return { family: null, note: `The model has no chat template. ${WRITE_YOUR_OWN}` };
  // A template may carry the markers of more than one family: each is tried in turn.
  const candidates = FAMILIES.filter((f) => f.markers.every((m) => chatTemplate.includes(m)));
  if (!candidates.length) {
    return { family: null, note: `The chat template is none of the known families (${FAMILY_NAMES}). ${WRITE_YOUR_OWN}` };
  }
  const names = candidates.map((f) => f.family).join(' or ');
  const unlike = (why: string): NoOllamaTemplate => ({ family: null, note: `The chat template has ${why}, so it is not treated as ${names}. ${WRITE_YOUR_OWN}` });
  const renderJinja = render(chatTemplate);
  const turns = renderJinja(PROBE_TURNS);
  if (turns instanceof Error) return unlike(`${names} markers but rendering a user/assistant/user chat with it failed (${turns.message})`);
  const withSystem = renderJinja(PROBE_WITH_SYSTEM);
  const misfits: string[] = [];
  for (const family of candidates) {
    const layout = family.layout({ turns, withSystem });
    if (typeof layout !== 'string') return { family: layout.variant ?? family.family, template: layout.template, stop: layout.stop };
    misfits.push(`${family.family} markers but ${layout}`);
  }
  return unlike(misfits.join('; and '));
}

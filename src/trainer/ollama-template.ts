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
// show (a default system prompt, Llama 3.1's system preamble) is copied into the Go template.
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
// - Qwen3 drops the <think> part of earlier assistant messages; here they are kept as sent.
// The Go conditions rely on `and` stopping at its first false argument (Go 1.18 and later).

import { renderChat, type ChatMessage } from './chat-format.ts';

export type OllamaTemplate = { family: string; template: string; stop: string[] };
export type NoOllamaTemplate = { family: null; note: string };

/** Probe texts: distinct, without whitespace at the ends (Llama 3 and Gemma trim message content). */
const PROBE = { system: 'NODEAI-PROBE-SYSTEM', user1: 'NODEAI-PROBE-USER-1', assistant: 'NODEAI-PROBE-ANSWER', user2: 'NODEAI-PROBE-USER-2' };
const PROBE_TURNS: ChatMessage[] = [
  { role: 'user', content: PROBE.user1 },
  { role: 'assistant', content: PROBE.assistant },
  { role: 'user', content: PROBE.user2 },
];
const PROBE_WITH_SYSTEM: ChatMessage[] = [{ role: 'system', content: PROBE.system }, ...PROBE_TURNS];

/** Go template text that prints `s` verbatim (a quoted constant, so `{{` in it is not an action). */
const goLiteral = (s: string) => (s ? `{{ ${JSON.stringify(s)} }}` : '');
/** Go template condition: the first message is a system message. */
const FIRST_IS_SYSTEM = '(and .Messages (eq (index .Messages 0).Role "system"))';

/** The model's Jinja template rendered as training renders it, without BOS; an Error when it throws. */
type Render = (messages: ChatMessage[]) => string | Error;

interface Layout {
  /** The family's name when this variant has one of its own (Llama 3.1's system preamble). */
  variant?: string;
  template: string;
  stop: string[];
  /** What the Jinja template renders for PROBE_WITH_SYSTEM if it has this layout. */
  withSystem: string;
  /** The family's own templates may reject system messages (Gemma 2 raises an exception). */
  systemMayBeRejected?: boolean;
}

interface Family {
  family: string;
  /** Every one must occur in the Jinja template text. */
  markers: string[];
  /** The layout this template should have, read from the no-system probe; a string says why none fits. */
  layout(turnsRendered: string): Layout | string;
}

/** `rendered` minus the known ending `tail`, or undefined when it does not end so. */
const before = (rendered: string, tail: string) => (rendered.endsWith(tail) ? rendered.slice(0, rendered.length - tail.length) : undefined);

const chatmlTurn = (role: string, content: string) => `<|im_start|>${role}\n${content}<|im_end|>\n`;
const chatmlTurns = chatmlTurn('user', PROBE.user1) + chatmlTurn('assistant', PROBE.assistant) + chatmlTurn('user', PROBE.user2) + '<|im_start|>assistant\n';

/** ChatML (Qwen2/2.5/3, SmolLM2, nodeai-tiny): a default system prompt when the chat has none (Qwen2/2.5, SmolLM2). */
const chatml: Family = {
  family: 'chatml',
  markers: ['<|im_start|>', '<|im_end|>'],
  layout(turnsRendered) {
    const head = before(turnsRendered, chatmlTurns);
    if (head === undefined) return 'the turns are not laid out as <|im_start|>ROLE\\nTEXT<|im_end|>\\n';
    const defaultSystem = head === '' ? undefined : /^<\|im_start\|>system\n([\s\S]*)<\|im_end\|>\n$/.exec(head)?.[1];
    if (head !== '' && defaultSystem === undefined) return `the chat starts with ${JSON.stringify(head.slice(0, 80))} when it has no system message`;
    const template =
      (defaultSystem === undefined ? '' : `{{- if not ${FIRST_IS_SYSTEM} }}<|im_start|>system\n${goLiteral(defaultSystem)}<|im_end|>\n{{ end }}`) +
      '{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n';
    return {
      template,
      stop: ['<|im_end|>', '<|im_start|>'],
      withSystem: chatmlTurn('system', PROBE.system) + chatmlTurns,
    };
  },
};

const llama3Turn = (role: string, content: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n${content}<|eot_id|>`;
const llama3Turns = llama3Turn('user', PROBE.user1) + llama3Turn('assistant', PROBE.assistant) + llama3Turn('user', PROBE.user2) + '<|start_header_id|>assistant<|end_header_id|>\n\n';
const llama3Range = (skipFirstSystem: boolean) =>
  `{{- range $i, $m := .Messages }}${skipFirstSystem ? '{{- if or $i (ne .Role "system") }}' : ''}` +
  '<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>' +
  `${skipFirstSystem ? '{{- end }}' : ''}{{- end }}<|start_header_id|>assistant<|end_header_id|>\n\n`;

/**
 * Llama 3 (a header per message) and Llama 3.1/3.2/3.3 (a system block always, opened by a
 * preamble: knowledge cutoff and date). Llama 3.2's template dates the preamble with
 * strftime_now, so training prompts carry the day they were rendered on; Ollama's templates cannot
 * format a date that way, so the date the probe renders (the export day) is written in.
 */
const llama3: Family = {
  family: 'llama3',
  markers: ['<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
  layout(turnsRendered) {
    const head = before(turnsRendered, llama3Turns);
    if (head === undefined) return 'the turns are not laid out as <|start_header_id|>ROLE<|end_header_id|>\\n\\nTEXT<|eot_id|>';
    const stop = ['<|eot_id|>', '<|start_header_id|>', '<|end_header_id|>'];
    if (head === '') {
      return { template: llama3Range(false), stop, withSystem: llama3Turn('system', PROBE.system) + llama3Turns };
    }
    const preamble = /^<\|start_header_id\|>system<\|end_header_id\|>\n\n([\s\S]*)<\|eot_id\|>$/.exec(head)?.[1];
    if (preamble === undefined) return `the chat starts with ${JSON.stringify(head.slice(0, 80))} when it has no system message`;
    const template =
      `<|start_header_id|>system<|end_header_id|>\n\n${goLiteral(preamble)}{{ if ${FIRST_IS_SYSTEM} }}{{ (index .Messages 0).Content }}{{ end }}<|eot_id|>` +
      llama3Range(true);
    return {
      variant: 'llama3.1',
      template,
      // Llama 3.1 ends a tool-calling turn with <|eom_id|>.
      stop: [...stop, '<|eom_id|>'],
      withSystem: llama3Turn('system', preamble + PROBE.system) + llama3Turns,
    };
  },
};

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
  layout(turnsRendered) {
    if (turnsRendered !== gemmaTurns('')) return 'the turns are not laid out as <start_of_turn>user|model\\nTEXT<end_of_turn>\\n';
    const template =
      '{{- $system := "" }}{{- $hasSystem := false }}{{- $first := true }}' +
      '{{- range $i, $m := .Messages }}' +
      '{{- if and (eq $i 0) (eq .Role "system") }}{{- $system = .Content }}{{- $hasSystem = true }}' +
      '{{- else }}<start_of_turn>{{ if eq .Role "assistant" }}model{{ else }}{{ .Role }}{{ end }}\n' +
      '{{ if $first }}{{ if $hasSystem }}{{ $system }}\n\n{{ end }}{{ $first = false }}{{ end }}' +
      '{{ .Content }}<end_of_turn>\n{{ end }}{{- end }}<start_of_turn>model\n';
    return {
      template,
      stop: ['<end_of_turn>', '<start_of_turn>'],
      withSystem: gemmaTurns(`${PROBE.system}\n\n`),
      systemMayBeRejected: true,
    };
  },
};

const phi3Turn = (role: string, content: string) => `<|${role}|>\n${content}<|end|>\n`;
const phi3Turns = phi3Turn('user', PROBE.user1) + phi3Turn('assistant', PROBE.assistant) + phi3Turn('user', PROBE.user2) + '<|assistant|>\n';

/** Phi-3/3.5: <|ROLE|>\nTEXT<|end|>\n. */
const phi3: Family = {
  family: 'phi3',
  markers: ['<|assistant|>', '<|end|>'],
  layout(turnsRendered) {
    if (turnsRendered !== phi3Turns) return 'the turns are not laid out as <|ROLE|>\\nTEXT<|end|>\\n';
    return {
      template: '{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n',
      stop: ['<|end|>', '<|endoftext|>', '<|user|>', '<|assistant|>', '<|system|>'],
      withSystem: phi3Turn('system', PROBE.system) + phi3Turns,
    };
  },
};

const FAMILIES: Family[] = [chatml, llama3, gemma, phi3];

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

/** Where two renderings part, for the note. */
function firstDifference(expected: string, got: string): string {
  let i = 0;
  while (i < expected.length && expected[i] === got[i]) i++;
  return `at character ${i}, expected ${JSON.stringify(expected.slice(i, i + 40))} but the chat template renders ${JSON.stringify(got.slice(i, i + 40))}`;
}

/**
 * The Ollama TEMPLATE and `stop` parameters for a model's Jinja chat template (GGUF
 * `tokenizer.chat_template`), or `family: null` with a note saying why there is none and what to do.
 */
export function ollamaTemplateFor(chatTemplate: string | undefined): OllamaTemplate | NoOllamaTemplate {
  if (!chatTemplate) return { family: null, note: `The model has no chat template. ${WRITE_YOUR_OWN}` };
  const family = FAMILIES.find((f) => f.markers.every((m) => chatTemplate.includes(m)));
  if (!family) {
    return { family: null, note: `The chat template is none of the known families (ChatML, Llama 3, Gemma, Phi-3). ${WRITE_YOUR_OWN}` };
  }
  const unlike = (why: string): NoOllamaTemplate => ({
    family: null,
    note: `The chat template has ${family.family} markers but ${why}, so it is not treated as ${family.family}. ${WRITE_YOUR_OWN}`,
  });
  const renderJinja = render(chatTemplate);
  const turns = renderJinja(PROBE_TURNS);
  if (turns instanceof Error) return unlike(`rendering a user/assistant/user chat with it failed (${turns.message})`);
  const layout = family.layout(turns);
  if (typeof layout === 'string') return unlike(layout);
  const withSystem = renderJinja(PROBE_WITH_SYSTEM);
  if (withSystem instanceof Error) {
    if (!layout.systemMayBeRejected) return unlike(`rendering a chat with a system message failed (${withSystem.message})`);
  } else if (withSystem !== layout.withSystem) {
    return unlike(`it renders a chat with a system message differently (${firstDifference(layout.withSystem, withSystem)})`);
  }
  return { family: layout.variant ?? family.family, template: layout.template, stop: layout.stop };
}

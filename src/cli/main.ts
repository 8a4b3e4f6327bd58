// The `nodeai` command: each sub-command lives in its own module, loaded only when used,
// so `nodeai data check` never pays for loading the trainer or the server.
import { UsageError } from './usage-error.ts';

type Command = { summary: string; load: () => Promise<{ run(args: string[]): Promise<number> }> };

const commands: Record<string, Command> = {
  data: { summary: 'check and convert training data', load: () => import('./data.ts') },
  serve: { summary: 'serve the REST API, live events and the OpenAI-compatible /v1', load: () => import('./serve.ts') },
  run: { summary: 'run a workflow: train, then chat with the result', load: () => import('./run.ts') },
  worker: { summary: 'train queued jobs (beside "serve --no-worker", or several sharing Postgres)', load: () => import('./worker-command.ts') },
  jobs: { summary: 'list, show, follow and cancel fine-tuning jobs', load: () => import('./jobs.ts') },
  models: { summary: 'fine-tuned models (list, show, rename, rm); base models (pull, catalog)', load: () => import('./models.ts') },
  files: { summary: 'upload, list and delete training files', load: () => import('./files.ts') },
  secrets: { summary: 'set, list and delete encrypted secrets (API keys)', load: () => import('./secrets.ts') },
  finetune: { summary: 'fine-tune a model on this machine', load: () => import('./finetune.ts') },
  chat: { summary: 'chat with a GGUF model', load: () => import('./chat.ts') },
  eval: { summary: 'evaluate a model on chat examples: loss, perplexity, exact and contains match', load: () => import('./eval.ts') },
};

function help(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `Usage: nodeai <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun 'nodeai <command> --help' for a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    console.error(`nodeai: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  try {
    const mod = await command.load();
    return await mod.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`nodeai ${name}: ${err.message}`);
      return 2;
    }
    console.error(`nodeai ${name}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

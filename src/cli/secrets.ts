// `nodeai secrets set|list|rm`: the encrypted vault. A value is read from stdin (piped, or
// typed at a hidden prompt), so it does not land in shell history or the process list.
import { commonOptions, DATA_DIR_HELP, dispatch, needArg, openStore, parse, printJson, table, when } from './app.ts';
import { MIN_REDACTABLE_BYTES } from '../store/index.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `Usage:
  nodeai secrets set NAME [--allow-host HOST]... [--json]
                                        reads the value from stdin (or a hidden prompt)
  nodeai secrets list [--json]          names only; values are never shown
  nodeai secrets rm NAME [--json]

Example: printf %s "$KEY" | nodeai secrets set OPENAI_API_KEY

An API key (OPENAI_API_KEY, ANTHROPIC_API_KEY) is sent only to its provider's own host
(api.openai.com, api.anthropic.com) and the hosts allowed for it here; a node whose base_url
points elsewhere gets no stored key.

Options:
  --allow-host HOST  a host (name or address, optional :port) the key may also be sent to,
                     e.g. another NodeAI: --allow-host gpu-box.lan:8787 (repeatable; given
                     again on "set", it replaces the list; not given, the list stays)
${DATA_DIR_HELP}`;

const setOptions = { ...commonOptions, 'allow-host': { type: 'string', multiple: true } } as const;

async function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode?.(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let value = '';
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          done();
          return resolve(value);
        }
        if (ch === '\u0003') {
          done();
          return reject(new UsageError('cancelled'));
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  // One trailing newline is what `echo` adds, not part of the secret.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export async function run(args: string[]): Promise<number> {
  const rm = async (rest: string[]) => {
    const { values, positionals } = parse(rest, commonOptions, USAGE);
    const name = needArg(positionals, 0, 'NAME', USAGE);
    const store = await openStore(values);
    try {
      const deleted = await store.secrets.delete(name);
      if (values.json) printJson({ name, deleted });
      else console.log(deleted ? `Deleted secret ${name}.` : `No secret named ${name}; nothing deleted.`);
      return deleted ? 0 : 1;
    } finally {
      await store.close();
    }
  };
  return dispatch(args, 'secrets', USAGE, {
    async set(rest) {
      const { values, positionals } = parse(rest, setOptions, USAGE);
      const name = needArg(positionals, 0, 'NAME', USAGE);
      let value: string;
      if (positionals.length > 1) {
        console.error('nodeai secrets: warning: a value on the command line can end up in your shell history and the process list; pipe it in instead: printf %s "$VALUE" | nodeai secrets set ' + name);
        value = positionals.slice(1).join(' ');
      } else if (process.stdin.isTTY) {
        value = await readHidden(`Value for ${name} (input hidden): `);
      } else {
        value = await readStdin();
      }
      if (value === '') throw new UsageError(`no value for secret ${name}: pipe it in, e.g. printf %s "$VALUE" | nodeai secrets set ${name}`);
      const store = await openStore(values);
      try {
        const allowedHosts = values['allow-host'];
        await store.secrets.set(name, value, { allowedHosts });
        const hosts = (await store.secrets.list()).find((s) => s.name === name)?.allowed_hosts ?? [];
        if (values.json) printJson({ name, set: true, allowed_hosts: hosts });
        else console.log(`Saved secret ${name} (encrypted)${hosts.length ? `; as an API key it may also go to ${hosts.join(', ')}` : ''}.`);
        return 0;
      } finally {
        await store.close();
      }
    },
    async list(rest) {
      const { values } = parse(rest, commonOptions, USAGE);
      const store = await openStore(values);
      try {
        const list = await store.secrets.list();
        if (values.json) printJson({ object: 'list', data: list });
        else if (list.length === 0) console.log('No secrets yet. Add one with: nodeai secrets set NAME');
        else {
          console.log(table(['NAME', 'UPDATED', 'ALLOWED HOSTS'], list.map((s) => [s.short ? `${s.name} (short!)` : s.name, when(s.updated_at), s.allowed_hosts.join(', ')])));
          if (list.some((s) => s.short)) console.log(`(short!) works, but is too short to be masked in logs and results: set it again with a value of at least ${MIN_REDACTABLE_BYTES} bytes.`);
        }
        return 0;
      } finally {
        await store.close();
      }
    },
    rm,
    delete: rm,
  });
}

// `nodeai files upload|list|rm`: the file store. Upload prints the ID a Fine-Tune node's
// training_file_id (or a File Loader's file_id) takes.
import { commonOptions, DATA_DIR_HELP, dispatch, needArg, openStore, parse, printJson, table, when } from './app.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `Usage:
  nodeai files upload FILE [--purpose P] [--json]   prints the file ID
  nodeai files list [--json]
  nodeai files rm FILE_ID [--json]

Options:
  --purpose P      OpenAI's file purpose (default fine-tune)
${DATA_DIR_HELP}`;

const options = { ...commonOptions, purpose: { type: 'string' } } as const;

export async function run(args: string[]): Promise<number> {
  const rm = async (rest: string[]) => {
    const { values, positionals } = parse(rest, options, USAGE);
    const id = needArg(positionals, 0, 'FILE_ID', USAGE);
    const store = await openStore(values);
    try {
      const deleted = await store.files.delete(id);
      if (values.json) printJson({ id, object: 'file', deleted });
      else console.log(deleted ? `Deleted ${id}.` : `No file ${id}; nothing deleted.`);
      return deleted ? 0 : 1;
    } finally {
      await store.close();
    }
  };
  return dispatch(args, 'files', USAGE, {
    async upload(rest) {
      const { values, positionals } = parse(rest, options, USAGE);
      const path = needArg(positionals, 0, 'FILE', USAGE);
      if (positionals.length > 1) throw new UsageError(`'files upload' takes one FILE, got ${positionals.length}`);
      const store = await openStore(values);
      try {
        const f = await store.files.put(path, { ...(values.purpose ? { purpose: values.purpose } : {}) });
        if (values.json) printJson({ id: f.id, object: 'file', bytes: f.bytes, created_at: Math.floor(f.created_at / 1000), filename: f.filename, purpose: f.purpose, sha256: f.sha256 });
        else console.log(f.id);
        return 0;
      } finally {
        await store.close();
      }
    },
    async list(rest) {
      const { values } = parse(rest, options, USAGE);
      const store = await openStore(values);
      try {
        const files = await store.files.list(values.purpose ? { purpose: values.purpose } : {});
        if (values.json) printJson({ object: 'list', data: files.map((f) => ({ id: f.id, object: 'file', bytes: Number(f.bytes), created_at: Math.floor(Number(f.created_at) / 1000), filename: f.filename, purpose: f.purpose })) });
        else if (files.length === 0) console.log('No files yet. Upload one with: nodeai files upload FILE');
        else console.log(table(['ID', 'FILENAME', 'BYTES', 'PURPOSE', 'CREATED'], files.map((f) => [f.id, f.filename, f.bytes, f.purpose, when(f.created_at)])));
        return 0;
      } finally {
        await store.close();
      }
    },
    rm,
    delete: rm,
  });
}

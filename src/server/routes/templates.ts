import { readdir, readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';
import type { Store } from '../../store/index.ts';
import { isGgufPath } from '../../trainer/gguf.ts';
import { ApiError, notFound } from '../errors.ts';
import { list } from '../http.ts';

// The example workflows of examples/workflows/, offered by the canvas as a template gallery.
// Their File Loaders name files by path, relative to the workflow file, which only the CLI
// reads; `use` copies those files into the file store and hands back the workflow with file IDs,
// so it runs from the canvas as it is.

export const DEFAULT_TEMPLATES_DIR = fileURLToPath(new URL('../../../examples/workflows', import.meta.url));

interface TemplateNode {
  id: string;
  type: string;
  config?: Record<string, unknown>;
  position?: { x: number; y: number };
}

interface Template {
  id: string;
  name: string;
  description: string;
  workflow: { name: string; description?: string; nodes: TemplateNode[]; edges: unknown[] };
}

const ID = /^[a-z0-9][a-z0-9-]{0,80}$/;

async function readTemplates(dir: string): Promise<Template[]> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort();
  const out: Template[] = [];
  for (const file of names) {
    const id = file.slice(0, -'.json'.length);
    if (!ID.test(id)) continue;
    const workflow = JSON.parse(await readFile(join(dir, file), 'utf8')) as Template['workflow'];
    out.push({ id, name: workflow.name ?? id, description: workflow.description ?? '', workflow });
  }
  return out;
}

export function templateRoutes(store: Store, dir = DEFAULT_TEMPLATES_DIR): Hono {
  const app = new Hono();
  const find = async (id: string) => {
    const t = (await readTemplates(dir)).find((x) => x.id === id);
    if (!t) throw notFound('template', id, 'List the templates to see their IDs.');
    return t;
  };
  app.get('/', async (c) => c.json(list((await readTemplates(dir)).map((t) => ({ object: 'template' as const, ...t })))));
  app.get('/:id', async (c) => c.json({ object: 'template', ...(await find(c.req.param('id'))) }));
  app.post('/:id/use', async (c) => {
    const t = await find(c.req.param('id'));
    const nodes = [];
    for (const node of t.workflow.nodes) {
      const config = { ...(node.config ?? {}) };
      if (node.type === 'file_loader' && typeof config.path === 'string') {
        const full = isAbsolute(config.path) ? config.path : resolve(dirname(join(dir, `${t.id}.json`)), config.path);
        const record = await store.files.put(full, { purpose: 'fine-tune' }).catch((err: Error) => {
          throw new ApiError(404, 'template_data_missing', `Template "${t.id}" reads ${config.path}, which cannot be read here (${err.message}). Upload the data yourself and set the File Loader's file.`);
        });
        delete config.path;
        config.file_id = record.id;
      }
      // A base model given as a GGUF path is read by this server: make it independent of the folder.
      if (node.type === 'finetune' && typeof config.base_model === 'string' && isGgufPath(config.base_model) && !isAbsolute(config.base_model)) {
        config.base_model = resolve(dir, config.base_model);
      }
      nodes.push({ ...node, config });
    }
    return c.json({ object: 'workflow.draft', template_id: t.id, name: t.name, nodes, edges: t.workflow.edges });
  });
  return app;
}

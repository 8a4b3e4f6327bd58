// The canvas (web/, built by Vite into web/dist) served at /: index.html and its hashed assets.
// Public, like any page: it holds no data, and asks for the API token before it calls the API.
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import { Hono } from 'hono';

export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web/dist', import.meta.url));

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

// React Flow and uPlot set inline styles; nothing else is allowed from anywhere but here.
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>NodeAI</title>
<p>The canvas is not built in this checkout. Run <code>npm run build:web</code> (npm ci does it), then reload.
The API is up: <code>/api/v1</code> and the OpenAI-compatible <code>/v1</code>.</p>`;

// Text assets go out compressed: the canvas bundle is ~1 MB as built, a fifth of that as brotli.
// Asset names carry their content hash, so each is compressed once and kept.
const COMPRESSIBLE = new Set(['.js', '.css', '.svg', '.json']);
const brotli = promisify(brotliCompress);
const gzipAsync = promisify(gzip);
type Encoding = 'br' | 'gzip';

function pickEncoding(accept: string | undefined): Encoding | null {
  const offered = (accept ?? '').split(',').map((p) => p.trim().split(';')[0].toLowerCase());
  return offered.includes('br') ? 'br' : offered.includes('gzip') ? 'gzip' : null;
}

export function webRoutes(dir: string): Hono {
  const app = new Hono();
  const compressed = new Map<string, Promise<Buffer>>();
  const compress = (name: string, body: Buffer, encoding: Encoding) => {
    const key = `${encoding}:${name}`;
    let out = compressed.get(key);
    if (!out) {
      out = encoding === 'br' ? brotli(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 9 } }) : gzipAsync(body, { level: 9 });
      compressed.set(key, out);
      out.catch(() => compressed.delete(key));
    }
    return out;
  };
  app.get('/', async (c) => {
    const html = await readFile(join(dir, 'index.html'), 'utf8').catch(() => null);
    c.header('Content-Security-Policy', CSP);
    c.header('Cache-Control', 'no-cache');
    return html === null ? c.html(NOT_BUILT, 503) : c.html(html);
  });
  app.get('/assets/:name', async (c) => {
    const name = c.req.param('name');
    const type = TYPES[extname(name)];
    // Vite's asset names only: no path separators, no dot-dot, a known type.
    if (!/^[\w.-]+$/.test(name) || name.includes('..') || !type) return c.notFound();
    const body = await readFile(join(dir, 'assets', name)).catch(() => null);
    if (!body) return c.notFound();
    const headers: Record<string, string> = { 'Content-Type': type, 'Cache-Control': 'public, max-age=31536000, immutable', Vary: 'Accept-Encoding' };
    const encoding = COMPRESSIBLE.has(extname(name)) ? pickEncoding(c.req.header('accept-encoding')) : null;
    if (!encoding) return c.body(new Uint8Array(body), 200, headers);
    return c.body(new Uint8Array(await compress(name, body, encoding)), 200, { ...headers, 'Content-Encoding': encoding });
  });
  return app;
}

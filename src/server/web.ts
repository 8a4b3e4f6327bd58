// The canvas (web/, built by Vite into web/dist) served at /: index.html and its hashed assets.
// Public, like any page: it holds no data, and asks for the API token before it calls the API.
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

export function webRoutes(dir: string): Hono {
  const app = new Hono();
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
    return c.body(body, 200, { 'Content-Type': type, 'Cache-Control': 'public, max-age=31536000, immutable' });
  });
  return app;
}

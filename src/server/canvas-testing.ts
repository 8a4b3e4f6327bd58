// Test support for the canvas: a real `nodeai serve` (the built canvas, the local trainer on nodeai-tiny)
// and Debian's Chromium through playwright-core, signed in with the API token.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { tempDir } from '../store/testing.ts';
import { DEFAULT_WEB_DIR } from './web.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'nodeai.js');
export const CHROMIUM = '/usr/bin/chromium';
export const CANVAS_TOKEN = 'canvas-test-token-0123456789';
/** Where the canvas tests leave their screenshots (git-ignored) for a person to look at. */
export const SCREENSHOTS = join(import.meta.dirname, '..', '..', 'web', 'screenshots');
const AXE = join(import.meta.dirname, '..', '..', 'node_modules', 'axe-core', 'axe.min.js');

export interface CanvasServer {
  url: string;
  /** A scratch folder for files the test writes. */
  dir: string;
  browser: Browser;
  close(): Promise<void>;
}

export async function startCanvas(): Promise<CanvasServer> {
  if (!existsSync(join(DEFAULT_WEB_DIR, 'index.html'))) throw new Error('web/dist is not built: run "npm run build:web".');
  const dir = tempDir('nodeai-canvas-');
  const server: ChildProcess = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', join(dir, 'data')], {
    env: { ...process.env, NODEAI_API_TOKEN: CANVAS_TOKEN, DATABASE_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    server.on('exit', (code) => reject(new Error(`nodeai serve exited with ${code}`)));
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  mkdirSync(SCREENSHOTS, { recursive: true });
  return {
    url,
    dir,
    browser,
    async close() {
      await browser.close();
      server.kill('SIGTERM');
      await new Promise((r) => (server.exitCode !== null ? r(null) : server.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function signIn(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('API token').fill(CANVAS_TOKEN);
  await page.getByRole('button', { name: 'Open' }).click();
  await page.getByRole('heading', { name: 'Nodes' }).waitFor();
}

export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** Serious and critical accessibility violations axe-core finds on the page as it is now. */
export async function axeViolations(page: Page): Promise<Array<{ id: string; impact: string; help: string; targets: string[] }>> {
  // Evaluated, not added as a <script>: the canvas's Content-Security-Policy forbids inline scripts.
  await page.evaluate(readFileSync(AXE, 'utf8'));
  return page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<{ violations: Array<{ id: string; impact: string; help: string; nodes: Array<{ target: string[] }> }> }> } }).axe;
    const result = await axe.run((globalThis as any).document, { resultTypes: ['violations'] });
    return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }));
  });
}

// The drawing stays in view when the canvas changes size (a smaller window, the run panel
// opening below it), in Debian's Chromium against a real `nodeai serve` — and does not jump
// after the person has panned by hand. Screenshots under web/screenshots/canvas-fit-*.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { screenshot, signIn, startCanvas, type CanvasServer } from './canvas-testing.ts';

const LARGE = { width: 1440, height: 900 };
const SMALL = { width: 1024, height: 700 };

describe('the canvas keeps its drawing in view', () => {
  let s: CanvasServer;
  let page: Page;

  /** IDs of the nodes whose box is not wholly inside the canvas's visible pane, itself inside the window. */
  const nodesOutside = () =>
    page.evaluate(() => {
      const doc = (globalThis as any).document;
      const pane = doc.querySelector('.react-flow').getBoundingClientRect();
      if (pane.bottom > (globalThis as any).innerHeight || pane.right > (globalThis as any).innerWidth) return ['(the canvas itself)'];
      return [...doc.querySelectorAll('.react-flow__node')]
        .filter((n: any) => {
          const b = n.getBoundingClientRect();
          return b.left < pane.left || b.right > pane.right || b.top < pane.top || b.bottom > pane.bottom;
        })
        .map((n: any) => n.dataset.id as string);
    });
  const viewportTransform = () => page.locator('.react-flow__viewport').evaluate((v: any) => v.style.transform as string);

  beforeAll(async () => {
    s = await startCanvas();
    page = await s.browser.newPage({ viewport: LARGE });
    await signIn(page, s.url);
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('fits the drawing again after a resize and when the run panel opens', { timeout: 60_000 }, async () => {
    await page.getByRole('button', { name: 'File Loader → Fine-Tune → Chat' }).click();
    await expect.poll(() => page.locator('.flow-node').count()).toBe(3);
    await expect.poll(nodesOutside).toEqual([]);
    await screenshot(page, 'canvas-fit-1440');
    await page.setViewportSize(SMALL);
    await expect.poll(nodesOutside).toEqual([]);

    // A run that fails at once (the file is not there) opens the run panel below the canvas.
    await page.getByTestId('node-file_loader').click();
    await page.locator('#field-file_id').fill('file-AAAAAAAAAAAAAAAAAAAAAAAA');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await expect.poll(() => page.getByTestId('run-status').textContent(), { timeout: 15_000 }).toBe('failed');
    await expect.poll(nodesOutside).toEqual([]);
    await screenshot(page, 'canvas-fit-run-1024');

    await page.setViewportSize(LARGE);
    await expect.poll(nodesOutside).toEqual([]);
    await screenshot(page, 'canvas-fit-run-1440');
    await page.setViewportSize(SMALL);
    await expect.poll(nodesOutside).toEqual([]);
  });

  it('does not move a view the person panned by hand, until they fit it again', { timeout: 60_000 }, async () => {
    const pane = (await page.locator('.react-flow__pane').boundingBox())!;
    // Drag the empty top-right corner of the pane: a pan by hand.
    const from = { x: pane.x + pane.width - 40, y: pane.y + 30 };
    await page.mouse.move(from.x, from.y);
    await page.mouse.down();
    await page.mouse.move(from.x - 120, from.y + 50, { steps: 6 });
    await page.mouse.up();
    const panned = await viewportTransform();

    await page.setViewportSize(LARGE);
    // Give a refit every chance to happen (it follows the resize within a frame or two).
    await page.waitForTimeout(800);
    expect(await viewportTransform()).toBe(panned);
    await page.setViewportSize(SMALL);
    await page.waitForTimeout(800);
    expect(await viewportTransform()).toBe(panned);
    await screenshot(page, 'canvas-fit-panned-1024');

    // "Fit view" fits it, and from then on a resize fits it again.
    await page.setViewportSize(LARGE);
    await page.getByRole('button', { name: 'Fit View' }).click();
    await expect.poll(nodesOutside).toEqual([]);
    await page.setViewportSize(SMALL);
    await expect.poll(nodesOutside).toEqual([]);
  });
});

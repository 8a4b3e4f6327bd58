import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BENCHMARK_CONFIG_OF, listCatalog, RECORDED_BENCHMARKS } from './base-catalog.ts';

const BENCHMARKS_MD = readFileSync(new URL('../../BENCHMARKS.md', import.meta.url), 'utf8');

/** The cells of BENCHMARKS.md's NodeAI rows for a config at a size, as `npm run bench:trainer` prints them (one per recorded set of runs). */
function nodeaiRows(label: string, ctx: number, batch: number): string[][] {
  const rows = BENCHMARKS_MD.split('\n').filter((l) => l.startsWith(`| ${label} | ctx ${ctx}, batch ${batch}`) && l.includes('| NodeAI'));
  return rows.map((row) => row.split('|').map((c) => c.trim()));
}

describe('the catalogue\'s training figures', () => {
  it('come from the recorded benchmark results, and BENCHMARKS.md states the same figures', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'nodeai-catalog-'));
    try {
      const models = await listCatalog(dataDir);
      for (const config of Object.values(BENCHMARK_CONFIG_OF)) expect(RECORDED_BENCHMARKS[config], `${config} was never recorded`).toBeDefined();
      for (const m of models) {
        const config = BENCHMARK_CONFIG_OF[m.id];
        const recorded = config ? RECORDED_BENCHMARKS[config] : undefined;
        if (!recorded || recorded.nodeai_tok_s === null || recorded.nodeai_rss_mb === null) {
          expect(m, m.id).toMatchObject({ est_train_tok_s: null, est_peak_rss_mb: null, benchmark: null });
          continue;
        }
        expect(m, m.id).toMatchObject({
          est_train_tok_s: recorded.nodeai_tok_s,
          est_peak_rss_mb: recorded.nodeai_rss_mb,
          benchmark: { config, machine: recorded.machine, date: recorded.date, loads_before: recorded.loads_before, command: recorded.command },
        });
        expect(m.benchmark!.setup).toContain(`ctx ${recorded.ctx}, batch ${recorded.batch}`);
        if (recorded.reduced) expect(m.benchmark!.setup).toContain(`reduced from ctx ${recorded.full_ctx}, batch ${recorded.full_batch}`);
        const figures = [recorded.nodeai_tok_s.toLocaleString('en-US'), recorded.nodeai_rss_mb.toLocaleString('en-US')];
        const rows = nodeaiRows(recorded.label, recorded.ctx, recorded.batch);
        expect(
          rows.some((cells) => figures.every((f) => cells.includes(f))),
          `BENCHMARKS.md has no NodeAI row for ${recorded.label} at ctx ${recorded.ctx}, batch ${recorded.batch} with ${figures.join(' tok/s and ')} MB`,
        ).toBe(true);
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

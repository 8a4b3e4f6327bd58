import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BENCHMARK_CONFIG_OF, CATALOG_ENTRIES, COMPUTED_CATALOG_SIZES, listCatalog, RECORDED_BENCHMARKS } from './base-catalog.ts';

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

describe("the catalogue's file sizes", () => {
  it("give every file a size that says its source: the hub's where the catalogue cites one, else llama.cpp's quantizer's", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'nodeai-catalog-'));
    try {
      const models = await listCatalog(dataDir);
      const sources = new Set<string>();
      for (const m of models) {
        const entry = CATALOG_ENTRIES.find((e) => e.id === m.id)!;
        expect(m.files.map((f) => f.quant)).toEqual(Object.keys(entry.files));
        for (const f of m.files) {
          const where = `${m.id} ${f.quant}`;
          expect(f.bytes, where).toBeGreaterThan(0);
          sources.add(f.bytes_source);
          const hub = entry.files[f.quant];
          if (hub !== null && hub !== undefined) expect(f, where).toMatchObject({ bytes: Math.round(hub), bytes_source: 'hub' });
          else expect(f, where).toMatchObject({ bytes: COMPUTED_CATALOG_SIZES.models[m.id]!.files[f.quant]!.bytes, bytes_source: 'computed' });
        }
      }
      expect([...sources].sort()).toEqual(['computed', 'hub']);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('were computed for every model and quant of the catalogue, on shapes with the parameter count of its card', () => {
    expect(COMPUTED_CATALOG_SIZES.method).toMatch(/llama\.cpp's quantizer \(dry run\)/);
    expect(Object.keys(COMPUTED_CATALOG_SIZES.models).sort()).toEqual(CATALOG_ENTRIES.map((e) => e.id).sort());
    for (const e of CATALOG_ENTRIES) {
      const computed = COMPUTED_CATALOG_SIZES.models[e.id]!;
      expect(Object.keys(computed.files).sort(), e.id).toEqual(Object.keys(e.files).sort());
      // The card gives the count to 1–3 significant digits (1.7B, 494M); the shapes must round to it.
      const digits = String(e.parameters).replace(/0+$/, '').length;
      expect(Number(computed.parameters.toPrecision(digits)), e.id).toBe(e.parameters);
      for (const [quant, f] of Object.entries(computed.files)) expect(f.header_bytes, `${e.id} ${quant}`).toBeLessThan(f.bytes);
    }
  });
});

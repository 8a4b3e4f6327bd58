// The catalogue's file size per quant, computed by llama.cpp's own quantizer: for each catalogue
// model a GGUF with its exact tensor layout and (where this machine has it) its real tokenizer is
// written as a sparse BF16 file (header only, the weights never written), the pinned libllama's
// quantizer dry-runs each catalogue quant on it and picks every tensor's type as a real run would,
// and the output file's size follows to the byte (src/trainer/quantized-file-size.ts; its test
// checks the method against real quantizer output). Prints the table beside the hub's figures;
// --write records the figures for the catalogue, which keeps a hub figure where it has one and
// takes these for the rest.
//
//   npx tsx bench/catalog-sizes.ts [--write src/trainer/catalog-file-sizes.json] [--only ID,ID…] [--verify]
//
// A few seconds of one core per model, and a few MB of disk (the layout files are sparse).
// --verify also writes each model as a full BF16 file of random weights and quantizes it for
// real, to compare the real file's size with the computed one (the model's size in memory as
// float32 and on disk: use it with --only and small models).
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CATALOG_ENTRIES, type ComputedCatalogSizes } from '../src/trainer/base-catalog.ts';
import { LLAMA_FTYPE, llamaQuantize, onlyLlamaErrors, type LlamaFtypeName } from '../src/trainer/ggml/llama-quantize.ts';
import { writeGgufModel, writeGgufModelLayout } from '../src/trainer/gguf-model.ts';
import { expectedTensors, tensorNames, type LlamaConfig } from '../src/trainer/llama-model.ts';
import { quantizedFileSize } from '../src/trainer/quantized-file-size.ts';
import { buildRandomModel } from '../src/trainer/random-model.ts';
import { CATALOG_SHAPES } from './catalog-shapes.ts';

const { values } = parseArgs({ options: { write: { type: 'string' }, only: { type: 'string' }, verify: { type: 'boolean' } } });
const only = values.only ? new Set(values.only.split(',')) : undefined;
if (values.only && values.write) throw new Error('--write records the whole catalogue; run it without --only.');

/** The significant digits a count is given to (the card's precision): 1.7e9 → 2, 135e6 → 3. */
function significantDigits(n: number): number {
  return n.toPrecision(15).replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '').length;
}

/** Weights as the card counts them: not rope_freqs (fixed factors), nor a tied head stored twice. */
function parameterCount(config: LlamaConfig, headStoredTwice: boolean): number {
  return expectedTensors(config)
    .filter((t) => t.name !== tensorNames.ropeFreqs && !(headStoredTwice && t.name === tensorNames.output))
    .reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
}

function llamaCppVersion(): string {
  const readJson = (path: string) => JSON.parse(readFileSync(new URL(`../node_modules/node-llama-cpp/${path}`, import.meta.url), 'utf8')) as Record<string, string>;
  return `the libllama of node-llama-cpp ${readJson('package.json').version} (llama.cpp release ${readJson('llama/binariesGithubRelease.json').release})`;
}

// A real quantize logs a line per tensor; only its errors are worth a terminal here.
if (values.verify) onlyLlamaErrors();
const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
const dir = await mkdtemp(join(tmpdir(), 'nodeai-catalog-sizes-'));
const models: ComputedCatalogSizes['models'] = {};
const rows: string[][] = [['model', 'quant', 'computed', 'bytes', 'header', 'hub', 'computed − hub', ...(values.verify ? ['real quantize − computed'] : [])]];
try {
  for (const entry of CATALOG_ENTRIES) {
    if (only && !only.has(entry.id)) continue;
    const shape = CATALOG_SHAPES[entry.id];
    if (!shape) throw new Error(`bench/catalog-shapes.ts has no shapes for catalogue model ${entry.id}; add them with their source.`);
    const tokenizer = await shape.tokenizer();
    const config: LlamaConfig = { ...shape.config, vocabSize: tokenizer.tokens.length, architecture: shape.architecture };
    const parameters = parameterCount(config, shape.headStoredTwice === true);
    // The shapes must give the card's parameter count to the digits the card gives (1.7B: 1.65–1.75B).
    if (Number(parameters.toPrecision(significantDigits(entry.parameters))) !== entry.parameters) {
      throw new Error(`${entry.id}: the shapes in bench/catalog-shapes.ts give ${parameters.toLocaleString('en')} parameters, the card ${entry.parameters.toLocaleString('en')}; check them against the model's config.json.`);
    }
    const layout = join(dir, `${entry.id}.bf16.gguf`);
    const name = `${entry.name} (layout)`;
    await writeGgufModelLayout(layout, { name, config, tokenizer }, 'BF16');
    // The same metadata, with random weights written out: what a real quantize reads.
    const full = join(dir, `${entry.id}.full.bf16.gguf`);
    if (values.verify) await writeGgufModel(full, buildRandomModel({ architecture: shape.architecture, config: shape.config, tokenizer, seed: 1, name }), { type: 'BF16' });
    const files: ComputedCatalogSizes['models'][string]['files'] = {};
    for (const quant of Object.keys(entry.files)) {
      if (!(quant in LLAMA_FTYPE)) throw new Error(`${entry.id}: quant ${quant} is not in LLAMA_FTYPE (src/trainer/ggml/llama-quantize.ts)`);
      const size = await quantizedFileSize(layout, quant as LlamaFtypeName);
      files[quant] = { bytes: size.bytes, header_bytes: size.headerBytes };
      const hub = entry.files[quant];
      const diff = hub === null || hub === undefined ? '' : `${(((size.bytes - hub) / hub) * 100).toFixed(1)} %`;
      const row = [entry.id, quant, mb(size.bytes), String(size.bytes), mb(size.headerBytes), hub ? mb(hub) : '-', diff];
      if (values.verify) {
        const out = join(dir, `${entry.id}.${quant}.gguf`);
        llamaQuantize(full, out, quant as LlamaFtypeName, { pure: false, threads: 2 });
        row.push(`${statSync(out).size - size.bytes} bytes`);
        await rm(out);
      }
      rows.push(row);
    }
    await rm(layout);
    await rm(full, { force: true });
    models[entry.id] = { parameters, shapes: shape.shapesSource, tokenizer: shape.tokenizerSource, files };
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));

if (values.write) {
  const command = `npx tsx bench/catalog-sizes.ts --write ${values.write}`;
  const recorded: ComputedCatalogSizes = {
    method: "computed by llama.cpp's quantizer (dry run) on the model's tensor shapes",
    llama_cpp: llamaCppVersion(),
    command,
    date: new Date().toISOString(),
    models,
  };
  writeFileSync(values.write, `${JSON.stringify(recorded, null, 2)}\n`);
  console.log(`Wrote ${values.write}`);
}

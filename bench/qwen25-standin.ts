// Writes a random-weight stand-in for hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q8_0, for measuring the
// time and memory of README's "Fine-tune a real model" where the real file cannot be downloaded:
//
//   npx tsx bench/qwen25-standin.ts /tmp/qwen25-standin-q8_0.gguf
//   /usr/bin/time -v npm run -s nodeai -- finetune examples/data/support-faq.jsonl \
//     --base /tmp/qwen25-standin-q8_0.gguf --lora-rank 8 --epochs 5 --early-stopping 2 \
//     --validation-split 0.15 --seed 4 --out /tmp/qwen25-run
//
// Shapes and tokenizer: the catalogue's (catalog-shapes.ts): Qwen/Qwen2.5-0.5B-Instruct's config.json
// (qwen2; hidden 896, 24 layers, 14 heads, 2 KV heads, FFN 4864, rope_theta 1e6, RMS eps 1e-6, tied
// embeddings, 151,936 embedding rows) and Qwen2.5's vocabulary from Qwen3's tokenizer.json.
import { buildRandomModel } from '../src/trainer/random-model.ts';
import { CATALOG_SHAPES } from './catalog-shapes.ts';
import { writeQuantizedModel } from './random-base.ts';

const out = process.argv[2];
if (!out || !out.endsWith('.gguf')) {
  console.error('Usage: npx tsx bench/qwen25-standin.ts OUT.gguf   (writes a Q8_0 GGUF; OUT.f16.gguf is made and removed on the way)');
  process.exit(2);
}

const shape = CATALOG_SHAPES['qwen2.5-0.5b-instruct']!;
const model = buildRandomModel({
  architecture: shape.architecture,
  config: shape.config,
  tokenizer: await shape.tokenizer(),
  seed: 1,
  name: 'Qwen2.5-0.5B-Instruct shapes, random weights',
});

// llama.cpp's own quantizer makes the Q8_0 file, as it made the real one, from an F16 file.
await writeQuantizedModel(out, model, 'Q8_0', 1);
console.log(`Wrote ${out}: ${model.config.vocabSize} tokens, ${model.tensors.size} tensors, Q8_0.`);

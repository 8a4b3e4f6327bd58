// Test support for the architecture parity tests: the same tokens through the trainer's graph and
// through llama.cpp (node-llama-cpp, F32 KV cache, no flash attention), as next-token
// log-probabilities per position, and the largest gap between the two.
import type { LlamaModel } from './llama-model.ts';
import { LlamaGraph } from './graph.ts';
import type { ControlledEvaluateInputItem, Token } from 'node-llama-cpp';
import { getLocalLlama } from './inference-runtime.ts';

/** log p(next = v | tokens[0..t]) for every position t, from the trainer's forward graph. */
export function trainerLogProbs(model: LlamaModel, tokens: number[]): Float64Array[] {
  const V = model.config.vocabSize;
  const graph = new LlamaGraph({ config: model.config, batch: 1, seqLen: tokens.length, threads: 1 });
  try {
    for (const [name, t] of graph.weights) graph.writeF32(t, model.tensors.get(name)!.data);
    graph.writeI32(graph.tokens, Int32Array.from(tokens));
    graph.runEval();
    const logits = graph.logitsF32();
    return tokens.map((_, t) => logSoftmax(logits.subarray(t * V, (t + 1) * V)));
  } finally {
    graph.dispose();
  }
}

function logSoftmax(x: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.exp(x[i] - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(x, (v) => v - lse);
}

export interface LlamaCppEvalOptions {
  /** A LoRA adapter GGUF to apply (scale 1). */
  loraPath?: string;
}

/** The same, from llama.cpp itself: probabilities of every token after each position. */
export async function llamaCppLogProbs(
  modelPath: string,
  tokens: number[],
  vocabSize: number,
  options: LlamaCppEvalOptions = {},
): Promise<Float64Array[]> {
  const llama = await getLocalLlama();
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  try {
    const context = await model.createContext({
      contextSize: Math.max(64, tokens.length + 8),
      batchSize: Math.max(64, tokens.length + 8),
      flashAttention: false,
      experimentalKvCacheKeyType: 'F32',
      experimentalKvCacheValueType: 'F32',
      threads: 1,
      ...(options.loraPath ? { lora: { adapters: [{ filePath: options.loraPath }] } } : {}),
    });
    try {
      const seq = context.getSequence();
      // Temperature 1 and no top-k/top-p/min-p: the probabilities are the plain softmax of the logits.
      const input: ControlledEvaluateInputItem[] = tokens.map((t) => [
        t as Token,
        { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } },
      ]);
      const out = await seq.controlledEvaluate(input);
      return out.map((o, t) => {
        const probs = o?.next.probabilities;
        if (!probs) throw new Error(`llama.cpp returned no probabilities at position ${t}`);
        const lp = new Float64Array(vocabSize).fill(-Infinity);
        for (const [tok, p] of probs) lp[tok as number] = Math.log(p);
        return lp;
      });
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/**
 * The largest |Δ log p| over positions and the tokens llama.cpp gives p ≥ minProb (tinier
 * probabilities are where float32 softmax rounding dominates).
 */
export function maxLogProbGap(a: Float64Array[], b: Float64Array[], minProb = 1e-4): number {
  if (a.length !== b.length) throw new Error(`${a.length} positions vs ${b.length}`);
  const minLog = Math.log(minProb);
  let worst = 0;
  for (let t = 0; t < a.length; t++) {
    for (let v = 0; v < a[t].length; v++) {
      if (b[t][v] < minLog) continue;
      worst = Math.max(worst, Math.abs(a[t][v] - b[t][v]));
    }
  }
  return worst;
}

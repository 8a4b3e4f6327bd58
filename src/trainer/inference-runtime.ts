// One node-llama-cpp runtime per process, on the prebuilt CPU binaries that ship in
// @node-llama-cpp/<platform>: never a GPU probe, a source download or a build, so chat works
// offline and starts the same way everywhere.

import { availableParallelism } from 'node:os';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';

let llamaPromise: Promise<Llama> | undefined;
const recentLogs: string[] = [];

/** The last llama.cpp warnings/errors, to explain a failed load (llama.cpp says why only in its log). */
export function recentLlamaLogs(max = 8): string[] {
  return recentLogs.slice(-max);
}

export function getLocalLlama(): Promise<Llama> {
  llamaPromise ??= getLlama({
    gpu: false,
    build: 'never',
    usePrebuiltBinaries: true,
    skipDownload: true,
    progressLogs: false,
    // node-llama-cpp allows at least 4 threads by default; more threads than cores only spin.
    maxThreads: Math.max(1, availableParallelism()),
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => {
      if (level === LlamaLogLevel.warn || level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) {
        recentLogs.push(message.trim());
        if (recentLogs.length > 50) recentLogs.splice(0, recentLogs.length - 50);
      }
    },
  }).catch((e: unknown) => {
    llamaPromise = undefined;
    throw e;
  });
  return llamaPromise;
}

/** Disposes the runtime (after every model and context on it is disposed). */
export async function disposeLocalLlama(): Promise<void> {
  const p = llamaPromise;
  llamaPromise = undefined;
  if (p) await (await p).dispose();
}

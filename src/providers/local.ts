// The local provider: chat on GGUF files through node-llama-cpp, and fine-tuning through the
// trainer's supervised child process. Providers sit below the store, so which file a model name
// means is for the caller to say (a resolver over the model registry).
import { generate, generateStream, type GenerateOptions } from '../trainer/inference.ts';
import { runLocalFineTune } from '../trainer/supervisor.ts';
import type { LocalFineTuneEvent, LocalFineTuneResult, LocalFineTuneSpec } from '../trainer/supervised-job-types.ts';
import { ProviderError, type ChatProvider, type ChatRequest, type ChatResult } from './spec.ts';

export const LOCAL_PROVIDER_ID = 'local';

/** Where a model's weights are: the model GGUF, and a LoRA adapter GGUF when it has one. */
export interface LocalModelFiles {
  model: string;
  lora?: string;
}

/** Maps a model name (`nodeai-tiny`, `ft:nodeai-tiny:…`) to its files; undefined when unknown. */
export type LocalModelResolver = (name: string) => Promise<LocalModelFiles | undefined>;

export class LocalChatProvider implements ChatProvider {
  readonly id = LOCAL_PROVIDER_ID;

  constructor(private readonly resolve: LocalModelResolver) {}

  async chat(req: ChatRequest): Promise<ChatResult> {
    const result = await generate(await this.options(req));
    return {
      text: result.text,
      model: req.model,
      finish_reason: result.finishReason === 'stop' ? 'stop' : 'length',
      usage: { prompt_tokens: result.usage.promptTokens, completion_tokens: result.usage.completionTokens, total_tokens: result.usage.totalTokens },
    };
  }

  async *stream(req: ChatRequest): AsyncIterable<string> {
    yield* generateStream(await this.options(req));
  }

  private async options(req: ChatRequest): Promise<GenerateOptions> {
    if (!req.messages || req.messages.length === 0) {
      throw new ProviderError('invalid_request', 'A chat request needs at least one message, e.g. [{"role": "user", "content": "Hello"}].', this.id, 400);
    }
    const files = await this.resolve(req.model);
    if (!files) {
      throw new ProviderError(
        'model_not_found',
        `Local model ${JSON.stringify(req.model)} was not found. Use "nodeai-tiny" or a fine-tuned model listed by "nodeai models list".`,
        this.id,
        404,
      );
    }
    return {
      model: files.model,
      ...(files.lora ? { lora: files.lora } : {}),
      messages: req.messages,
      ...(req.max_tokens !== undefined ? { maxTokens: req.max_tokens } : {}),
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(req.top_p !== undefined ? { topP: req.top_p } : {}),
      ...(req.seed !== undefined ? { seed: req.seed } : {}),
      ...(req.signal ? { signal: req.signal } : {}),
    };
  }
}

export interface LocalTrainingOptions {
  onEvent?: (event: LocalFineTuneEvent) => void;
  signal?: AbortSignal;
}

/** The trainer's entry point, as the job queue calls it; a seam so tests can count calls. */
export type LocalTrainingRunner = (spec: LocalFineTuneSpec, options: LocalTrainingOptions) => Promise<LocalFineTuneResult>;

/** Runs (or resumes, when `spec.jobDir` holds a checkpoint) one local fine-tune in a supervised child process. */
export const runLocalTraining: LocalTrainingRunner = (spec, options) =>
  runLocalFineTune(spec, { ...(options.onEvent ? { onEvent: options.onEvent } : {}), ...(options.signal ? { signal: options.signal } : {}) });

// The local provider: chat on GGUF files through node-llama-cpp, and fine-tuning through the
// trainer's supervised child process. Providers sit below the store, so which file a model name
// means is for the caller to say (a resolver over the model registry).
import { ContextOverflowError } from '../trainer/chat-format.ts';
import { generate, generateStream, type GenerateOptions } from '../trainer/inference.ts';
import type { StallPolicy } from '../trainer/progress-watchdog.ts';
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
    const result = await generate(await this.options(req)).catch((err: unknown) => {
      throw contextLengthError(err, this.id);
    });
    return {
      text: result.text,
      model: req.model,
      finish_reason: result.finishReason === 'stop' ? 'stop' : 'length',
      usage: { prompt_tokens: result.usage.promptTokens, completion_tokens: result.usage.completionTokens, total_tokens: result.usage.totalTokens },
    };
  }

  async *stream(req: ChatRequest): AsyncIterable<string> {
    try {
      yield* generateStream(await this.options(req));
    } catch (err) {
      throw contextLengthError(err, this.id);
    }
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

/**
 * A prompt longer than the model's context is the caller's mistake, answered as OpenAI answers
 * it: 400 `context_length_exceeded`, saying how long the prompt and the context are.
 */
function contextLengthError(err: unknown, providerId: string): unknown {
  if (!(err instanceof ContextOverflowError)) return err;
  return new ProviderError(
    'context_length_exceeded',
    `This model's maximum context length is ${err.contextLength} tokens, but the messages (plus one reply token) are ${err.tokens} tokens. Shorten the messages or the system prompt.`,
    providerId,
    400,
  );
}

export interface LocalTrainingOptions {
  onEvent?: (event: LocalFineTuneEvent) => void;
  /** Cancels with a checkpoint. */
  signal?: AbortSignal;
  /** Stops the trainer at once, without a checkpoint (the job was taken over). */
  kill?: AbortSignal;
  /** How long the trainer may go without progress before it is killed as stuck. */
  stall?: Partial<StallPolicy>;
}

/** The trainer's entry point, as the job queue calls it; a seam so tests can count calls. */
export type LocalTrainingRunner = (spec: LocalFineTuneSpec, options: LocalTrainingOptions) => Promise<LocalFineTuneResult>;

/** Runs (or resumes, when `spec.jobDir` holds a checkpoint) one local fine-tune in a supervised child process. */
export const runLocalTraining: LocalTrainingRunner = (spec, { onEvent, signal, kill, stall }) =>
  runLocalFineTune(spec, { ...(onEvent ? { onEvent } : {}), ...(signal ? { signal } : {}), ...(kill ? { kill } : {}), ...(stall ? { stall } : {}) });

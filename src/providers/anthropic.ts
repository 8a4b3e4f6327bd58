// Anthropic: chat only, through the official SDK. Fine-tuning gets an honest refusal.
import Anthropic from '@anthropic-ai/sdk';
import { findBoundKey, type FindKeyOptions, type KeyRule } from './key-binding.ts';
import { ProviderError, type ChatProvider, type ChatRequest, type ChatResult } from './spec.ts';

export const ANTHROPIC_PROVIDER_ID = 'anthropic';

export const ANTHROPIC_NO_FINE_TUNING =
  'Anthropic offers no fine-tuning API: its only route, fine-tuning Claude 3 Haiku on Amazon Bedrock, has been retired. ' +
  'Set the Fine-Tune node\'s provider to "local" (the default) to train on this machine and chat with the result; ' +
  'the Chat node can still talk to Anthropic models.';

/** Thrown whenever fine-tuning is asked of Anthropic. */
export class AnthropicFineTuningUnsupportedError extends ProviderError {
  constructor() {
    super('fine_tuning_not_supported', ANTHROPIC_NO_FINE_TUNING, ANTHROPIC_PROVIDER_ID);
    this.name = 'AnthropicFineTuningUnsupportedError';
  }
}

// ---- chat ----------------------------------------------------------------------------------

export const ANTHROPIC_KEY_SECRET = 'ANTHROPIC_API_KEY';
/** Anthropic requires a reply limit on every request; used when the caller sets none. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 1024;

export class AnthropicKeyMissingError extends ProviderError {
  constructor() {
    super(
      'api_key_missing',
      `Anthropic API key not found. Add it in the node's "api_key" setting, or store it once with "nodeai secrets set ${ANTHROPIC_KEY_SECRET}" (the value is read from stdin), or set ${ANTHROPIC_KEY_SECRET} in the environment.`,
      ANTHROPIC_PROVIDER_ID,
      401,
    );
    this.name = 'AnthropicKeyMissingError';
  }
}

const ANTHROPIC_KEY_RULE: KeyRule = { provider: ANTHROPIC_PROVIDER_ID, secretName: ANTHROPIC_KEY_SECRET, officialHost: 'api.anthropic.com', missing: () => new AnthropicKeyMissingError() };

/**
 * The node setting first, then the vault, then the environment; a stored key only for Anthropic's
 * own API or the hosts allowed for it (KeyNotAllowedError); throws AnthropicKeyMissingError.
 */
export function findAnthropicKey(options: FindKeyOptions): Promise<string> {
  return findBoundKey(ANTHROPIC_KEY_RULE, options);
}

export interface AnthropicChatOptions {
  apiKey: string;
  /** Default api.anthropic.com; tests and proxies point elsewhere. */
  baseURL?: string | null;
  /** Per request; default 60 s. */
  timeoutMs?: number;
  /** The SDK's retries (429, 5xx, 529 overloaded, lost connections; Retry-After honoured). Default 2. */
  maxRetries?: number;
}

/** Chat with Claude models through the official SDK: the system prompt goes in Anthropic's own `system` field. */
export class AnthropicChatProvider implements ChatProvider {
  readonly id = ANTHROPIC_PROVIDER_ID;
  private readonly client: Anthropic;
  private readonly host: string;
  private readonly apiKey: string;

  constructor(options: AnthropicChatOptions) {
    if (!options.apiKey) throw new AnthropicKeyMissingError();
    this.apiKey = options.apiKey;
    const baseURL = options.baseURL?.trim() || 'https://api.anthropic.com';
    this.host = new URL(baseURL).host;
    // baseURL is always given so that ANTHROPIC_BASE_URL in the environment cannot redirect keys.
    this.client = new Anthropic({ apiKey: options.apiKey, baseURL, timeout: options.timeoutMs ?? 60_000, maxRetries: options.maxRetries ?? 2 });
  }

  private params(req: ChatRequest) {
    const system = req.messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n\n');
    // Anthropic takes only user and assistant turns; a tool result without its tool_use id reads as user text.
    const messages = req.messages.filter((m) => m.role !== 'system').map((m) => ({ role: m.role === 'assistant' ? ('assistant' as const) : ('user' as const), content: m.content }));
    if (messages.length === 0) {
      throw new ProviderError('invalid_request', 'A chat request to Anthropic needs at least one user message besides the system prompt.', this.id);
    }
    return {
      model: req.model,
      max_tokens: req.max_tokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS,
      messages,
      ...(system ? { system } : {}),
      ...(req.temperature !== undefined ? { temperature: Math.min(1, req.temperature) } : {}),
      ...(req.top_p !== undefined ? { top_p: req.top_p } : {}),
    };
  }

  async chat(req: ChatRequest): Promise<ChatResult> {
    const params = this.params(req);
    let res: Anthropic.Message;
    try {
      res = await this.client.messages.create({ ...params, stream: false }, { signal: req.signal ?? null });
    } catch (err) {
      throw this.error(err);
    }
    const text = res.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
    const usage = { prompt_tokens: res.usage.input_tokens, completion_tokens: res.usage.output_tokens, total_tokens: res.usage.input_tokens + res.usage.output_tokens };
    return { text, model: res.model || req.model, finish_reason: res.stop_reason === 'max_tokens' ? 'length' : 'stop', usage };
  }

  async *stream(req: ChatRequest): AsyncIterable<string> {
    const params = this.params(req);
    let stream: AsyncIterable<Anthropic.RawMessageStreamEvent>;
    try {
      stream = await this.client.messages.create({ ...params, stream: true }, { signal: req.signal ?? null });
    } catch (err) {
      throw this.error(err);
    }
    try {
      for await (const event of stream) {
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta' && event.delta.text) yield event.delta.text;
      }
    } catch (err) {
      throw this.error(err);
    }
  }

  /** Anthropic's failures under the same stable codes as OpenAI's. */
  private error(err: unknown): ProviderError {
    if (err instanceof ProviderError) return err;
    const scrub = (t: string) => t.split(this.apiKey).join('[REDACTED]');
    if (err instanceof Anthropic.APIUserAbortError) return new ProviderError('aborted', `Stopped chatting at ${this.host}: the request was cancelled.`, this.id);
    if (err instanceof Anthropic.APIConnectionError) {
      return new ProviderError('connection_error', `Lost the connection to ${this.host}${err instanceof Anthropic.APIConnectionTimeoutError ? ' (timed out)' : ''}. Check the network; NodeAI retried.`, this.id);
    }
    if (err instanceof Anthropic.APIError) {
      const body = (err.error ?? {}) as { error?: { type?: string; message?: string } };
      const said = scrub(body.error?.message ?? err.message);
      const kind = body.error?.type ?? '';
      const status = err.status;
      const theySaid = ` (${status ?? 'stream'}${kind ? ` ${kind}` : ''}: ${said})`;
      if (status === 401 || status === 403) {
        return new ProviderError('auth', `${this.host} refused the Anthropic API key${theySaid}. Check the node's "api_key" setting or the vault ("nodeai secrets set ${ANTHROPIC_KEY_SECRET}").`, this.id, status);
      }
      if (status === 404) return new ProviderError('not_found', `Not found at ${this.host}${theySaid}. Check the model name, e.g. "claude-sonnet-4-5".`, this.id, status);
      if (status === 429) return new ProviderError('rate_limited', `Rate limited by ${this.host}${theySaid}. NodeAI retried; wait a minute and run again.`, this.id, status);
      if (status === undefined || status >= 500 || kind === 'overloaded_error') return new ProviderError('server_error', `${this.host} failed${theySaid}. NodeAI retried; try again later.`, this.id, status);
      return new ProviderError('invalid_request', `${this.host} rejected the chat request${theySaid}.`, this.id, status);
    }
    return new ProviderError('provider_error', `Chat with ${this.host} failed: ${scrub(err instanceof Error ? err.message : String(err))}`, this.id);
  }
}

// Finding the OpenAI API key. Providers sit below the store, so the vault is reached through a getter.
import { ProviderError } from './spec.ts';

export const OPENAI_PROVIDER_ID = 'openai';
export const OPENAI_KEY_SECRET = 'OPENAI_API_KEY';

export class OpenAIKeyMissingError extends ProviderError {
  constructor() {
    super(
      'api_key_missing',
      `OpenAI API key not found. Add it in the node's "api_key" setting, or store it once with "nodeai secrets set ${OPENAI_KEY_SECRET}" (the value is read from stdin), or set ${OPENAI_KEY_SECRET} in the environment.`,
      OPENAI_PROVIDER_ID,
      401,
    );
    this.name = 'OpenAIKeyMissingError';
  }
}

export interface FindOpenAIKeyOptions {
  /** The node's `api_key` setting, if any. */
  configKey?: string | null;
  /** Reads a secret from the vault; resolves undefined when there is none of that name. */
  getSecret?: (name: string) => Promise<string | undefined>;
  env?: NodeJS.ProcessEnv;
}

/** The node setting first, then the vault, then the environment; throws OpenAIKeyMissingError. */
export async function findOpenAIKey(options: FindOpenAIKeyOptions): Promise<string> {
  const fromConfig = options.configKey?.trim();
  if (fromConfig) return fromConfig;
  const fromVault = (await options.getSecret?.(OPENAI_KEY_SECRET))?.trim();
  if (fromVault) return fromVault;
  const fromEnv = (options.env ?? process.env)[OPENAI_KEY_SECRET]?.trim();
  if (fromEnv) return fromEnv;
  throw new OpenAIKeyMissingError();
}

// Finding the OpenAI API key. Providers sit below the store, so the vault is reached through a getter.
import { findBoundKey, type FindKeyOptions, type KeyRule } from './key-binding.ts';
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

export type FindOpenAIKeyOptions = FindKeyOptions;

const OPENAI_KEY_RULE: KeyRule = { provider: OPENAI_PROVIDER_ID, secretName: OPENAI_KEY_SECRET, officialHost: 'api.openai.com', missing: () => new OpenAIKeyMissingError() };

/**
 * The node setting first, then the vault, then the environment; a stored key only for OpenAI's
 * own API or the hosts allowed for it (KeyNotAllowedError); throws OpenAIKeyMissingError.
 */
export function findOpenAIKey(options: FindOpenAIKeyOptions): Promise<string> {
  return findBoundKey(OPENAI_KEY_RULE, options);
}

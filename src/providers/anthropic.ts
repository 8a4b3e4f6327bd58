// Anthropic: chat only. What the Fine-Tune node needs today is an honest refusal.
import { ProviderError } from './spec.ts';

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

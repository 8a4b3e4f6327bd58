import { NodeAIError } from '../nodeai-error.ts';

/** A mistake in how a command was called: the CLI prints it and exits with code 2. */
export class UsageError extends NodeAIError {
  constructor(message: string) {
    super('usage_error', message, { status: 400 });
    this.name = 'UsageError';
  }
}

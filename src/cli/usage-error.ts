/** A mistake in how a command was called: the CLI prints it and exits with code 2. */
export class UsageError extends Error {
  readonly code = 'usage_error';
}

import { UsageError } from './usage-error.ts';

export async function run(args: string[]): Promise<number> {
  throw new UsageError(`'data ${args[0] ?? ''}' is not implemented yet`);
}

// The architectures the local trainer builds, by `general.architecture`. Adding one: a file
// describing its differences (types.ts), an entry here, and a parity test against llama.cpp.
import { gemma3 } from './gemma3.ts';
import { llama } from './llama.ts';
import { qwen2 } from './qwen2.ts';
import { qwen3 } from './qwen3.ts';
import type { ArchitectureSpec } from './types.ts';

export const ARCHITECTURES = { llama, qwen2, qwen3, gemma3 } as const satisfies Record<string, ArchitectureSpec>;

export type ArchitectureName = keyof typeof ARCHITECTURES;

export const ARCHITECTURE_NAMES = Object.keys(ARCHITECTURES) as ArchitectureName[];

export function isArchitectureName(name: string | undefined): name is ArchitectureName {
  return name !== undefined && Object.hasOwn(ARCHITECTURES, name);
}

export function architectureSpec(name: ArchitectureName | undefined): ArchitectureSpec {
  return ARCHITECTURES[name ?? 'llama'];
}

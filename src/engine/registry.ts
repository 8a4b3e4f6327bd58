import { z } from 'zod';
import { NodeRegistryError } from './errors.ts';
import type { AnyNodeDefinition } from './node.ts';

/** What the canvas and the API show of a node type: its declaration, with the config as JSON Schema. */
export type NodeDescription = Pick<AnyNodeDefinition, 'type' | 'name' | 'category' | 'description' | 'inputs' | 'outputs'> & {
  /** JSON Schema of the config, generated from the zod schema, for forms and docs. */
  configSchema: unknown;
};

export class NodeRegistry {
  private readonly defs = new Map<string, AnyNodeDefinition>();

  constructor(defs: Iterable<AnyNodeDefinition> = []) {
    for (const def of defs) this.register(def);
  }

  register(def: AnyNodeDefinition): this {
    if (this.defs.has(def.type)) {
      throw new NodeRegistryError('node_type_duplicate', `Node type "${def.type}" is registered twice; each type must be unique.`);
    }
    this.defs.set(def.type, def);
    return this;
  }

  get(type: string): AnyNodeDefinition | undefined {
    return this.defs.get(type);
  }

  has(type: string): boolean {
    return this.defs.has(type);
  }

  types(): string[] {
    return [...this.defs.keys()].sort();
  }

  describe(): NodeDescription[] {
    return this.types().map((type) => {
      const def = this.defs.get(type)!;
      return {
        type,
        name: def.name,
        category: def.category,
        description: def.description,
        inputs: def.inputs,
        outputs: def.outputs,
        configSchema: z.toJSONSchema(def.config, { unrepresentable: 'any', io: 'input' }),
      };
    });
  }
}

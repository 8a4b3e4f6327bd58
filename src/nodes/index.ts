// The built-in nodes and the registry the CLI, the server and the tests build engines with.
import { NodeRegistry, type AnyNodeDefinition } from '../engine/index.ts';
import { chatNode } from './chat.ts';
import { dataLoaderNode } from './data-loader.ts';
import { evaluateNode } from './evaluate.ts';
import { fileLoaderNode } from './file-loader.ts';
import { fineTuneNode } from './fine-tune.ts';

export { chatNode, dataLoaderNode, evaluateNode, fileLoaderNode, fineTuneNode };
export { createNodeServices, ensureTinyBaseModel, servicesOf, TINY_BASE_SEED, type NodeServices } from './services.ts';

export const builtinNodes: AnyNodeDefinition[] = [fileLoaderNode, dataLoaderNode, fineTuneNode, evaluateNode, chatNode];

export function createNodeRegistry(extra: AnyNodeDefinition[] = []): NodeRegistry {
  return new NodeRegistry([...builtinNodes, ...extra]);
}

import { z } from 'zod';
import { defineNode, type NodeContext } from '../engine/index.ts';
import { remoteBaseUrl } from '../jobs/remote-tracker.ts';
import { AnthropicChatProvider, findAnthropicKey } from '../providers/anthropic.ts';
import { OpenAIChatProvider } from '../providers/openai.ts';
import { findOpenAIKey } from '../providers/openai-key.ts';
import type { ChatMessage, ChatProvider } from '../providers/spec.ts';
import { looksLikeRemoteModelRef, parseModelRef } from '../trainer/model-ref.ts';
import { fetchModelFile, nodeError, servicesOf, type NodeServices } from './services.ts';

const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

const config = z.object({
  provider: z.enum(['local', 'openai', 'anthropic']).default('local').describe('Who answers: local (this machine, the default), openai or anthropic.'),
  model: z
    .string()
    .trim()
    .min(1)
    .default('nodeai-tiny')
    .superRefine((text, ctx) => {
      // A malformed hf:/ollama: reference is refused when the workflow is saved, not when it runs.
      if (!looksLikeRemoteModelRef(text)) return;
      try {
        parseModelRef(text);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
      }
    })
    .describe('The model to chat with when no fine-tuned model is used: nodeai-tiny, hf:OWNER/REPO:QUANT (downloaded on first use), or ollama:NAME[:TAG] (read from Ollama\'s store).'),
  use_finetuned_model: z.boolean().default(false).describe('Chat with a fine-tuned model from the model registry (or the one a connected Fine-Tune node produced).'),
  finetuned_model: z.string().trim().optional().describe('Name or ID of a fine-tuned model ("nodeai models list"); a model wired from an upstream Fine-Tune node takes precedence.'),
  system_prompt: z.string().optional().describe('Instructions put before the conversation as a system message.'),
  prompt: z.string().optional().describe('The user message, when none arrives on the prompt/messages/data inputs.'),
  temperature: z.number().min(0).max(2).default(0).describe('0 answers deterministically (greedy); higher values sample more freely.'),
  max_tokens: z.number().int().min(1).max(4096).default(128).describe('Longest reply, in tokens.'),
  seed: z.number().int().min(0).optional().describe('Makes sampling (temperature > 0) reproducible.'),
  api_key: z.string().optional().describe('OpenAI or Anthropic key. Better: "nodeai secrets set OPENAI_API_KEY" (or ANTHROPIC_API_KEY), so the key never sits in the workflow.'),
  base_url: z
    .string()
    .trim()
    .optional()
    .describe('OpenAI: any OpenAI-compatible server (another NodeAI "http://host:8787/v1", Azure "https://<resource>.openai.azure.com", vLLM, Ollama…); Anthropic: a proxy. Empty = the provider\'s own API, or where the fine-tuned model was trained.'),
});
type ChatConfig = z.output<typeof config>;

export const chatNode = defineNode({
  type: 'chat',
  name: 'Chat',
  category: 'ai',
  description: 'Sends a prompt or a conversation to a model — the built-in one, or a model just fine-tuned — and outputs the reply.',
  inputs: [
    { name: 'data', description: 'a prompt (text), messages, or a Fine-Tune node\'s outputs (its fine_tuned_model is used)' },
    { name: 'prompt', description: 'the user message' },
    { name: 'messages', description: 'a conversation: [{role, content}, …]' },
    { name: 'fine_tuned_model', description: 'a model name from a Fine-Tune node' },
  ],
  outputs: [
    { name: 'data', description: 'the reply text' },
    { name: 'reply' },
    { name: 'usage' },
    { name: 'model' },
  ],
  config,
  secretConfig: ['api_key'],
  async run(ctx) {
    const { config, inputs } = ctx;
    const data = inputs.data;
    const fromData = data && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : undefined;
    const wiredModel = typeof inputs.fine_tuned_model === 'string' ? inputs.fine_tuned_model : typeof fromData?.fine_tuned_model === 'string' ? (fromData.fine_tuned_model as string) : undefined;

    let model = config.model;
    let fineTuned = false;
    if (wiredModel) {
      model = wiredModel;
      fineTuned = true;
    } else if (config.use_finetuned_model) {
      if (!config.finetuned_model) {
        throw nodeError('invalid_config', '"use_finetuned_model" is on but no model is chosen: set "finetuned_model" to a name from "nodeai models list", or connect a Fine-Tune node.');
      }
      model = config.finetuned_model;
      fineTuned = true;
    }

    const messages = buildMessages(config.system_prompt, inputs, data, config.prompt);

    const services = servicesOf(ctx);
    if (!fineTuned && config.provider === 'local' && looksLikeRemoteModelRef(model)) await fetchBaseModel(ctx, services, model);
    const registered = fineTuned ? await services.models.find(model) : undefined;
    // A remote server may know fine-tuned models this registry never saw; the local one cannot.
    if (fineTuned && !registered && config.provider === 'local') {
      throw nodeError('model_not_found', `Fine-tuned model ${JSON.stringify(model)} is not in the model registry. Run "nodeai models list" to see the models.`);
    }
    if (registered) model = registered.id;
    const provider = config.provider === 'local' ? services.localChat : await remoteProvider(ctx, services, config, registered?.job_id ?? null);
    const result = await provider.chat({
      model,
      messages,
      temperature: config.temperature,
      max_tokens: config.max_tokens,
      ...(config.seed !== undefined ? { seed: config.seed } : {}),
      signal: ctx.signal,
    });
    if (registered) await services.models.recordUse(model);
    ctx.logger.info(`${model}${config.provider === 'local' ? '' : ` (${config.provider})`} replied with ${result.usage.completion_tokens} tokens`);
    return { data: result.text, reply: result.text, usage: result.usage, model, finish_reason: result.finish_reason };
  },
});

/** Downloads an hf: model on first use (reads an ollama: one in place), logging progress on the run. */
async function fetchBaseModel(ctx: NodeContext<ChatConfig>, services: NodeServices, model: string): Promise<void> {
  const ref = parseModelRef(model);
  if (ref.kind === 'hf' || ref.kind === 'ollama') await fetchModelFile(ctx, services, ref);
}

async function remoteProvider(ctx: NodeContext<ChatConfig>, services: NodeServices, config: ChatConfig, jobId: string | null): Promise<ChatProvider> {
  const getSecret = ctx.secrets.lookupKey;
  let baseURL = config.base_url || undefined;
  if (config.provider === 'openai') {
    // A model NodeAI trained remotely is served where it was trained, unless base_url says otherwise.
    if (!baseURL && jobId) baseURL = remoteBaseUrl(await services.jobs.getRow(jobId).catch(() => ({ metadata_json: null }))) ?? undefined;
    const apiKey = await findOpenAIKey({ configKey: config.api_key, getSecret, baseURL });
    ctx.store.redactor.add(apiKey);
    return new OpenAIChatProvider({ ...services.openai, apiKey, baseURL });
  }
  const apiKey = await findAnthropicKey({ configKey: config.api_key, getSecret, baseURL });
  ctx.store.redactor.add(apiKey);
  return new AnthropicChatProvider({ apiKey, baseURL });
}

function buildMessages(system: string | undefined, inputs: Record<string, unknown>, data: unknown, configPrompt: string | undefined): ChatMessage[] {
  let conversation: ChatMessage[] | undefined;
  const raw = inputs.messages ?? (Array.isArray(data) ? data : undefined);
  if (raw !== undefined) conversation = parseMessages(raw);
  const prompt = typeof inputs.prompt === 'string' ? inputs.prompt : typeof data === 'string' ? data : configPrompt;
  if (!conversation && (prompt === undefined || prompt.trim() === '')) {
    throw nodeError('no_prompt', 'The Chat node has nothing to ask: set "prompt", or connect text, messages, or a node whose data is text to its input.');
  }
  const out: ChatMessage[] = [];
  if (system && system.trim() !== '' && conversation?.[0]?.role !== 'system') out.push({ role: 'system', content: system });
  if (conversation) out.push(...conversation);
  if (prompt !== undefined && prompt.trim() !== '' && (!conversation || inputs.prompt !== undefined || configPrompt !== undefined)) out.push({ role: 'user', content: prompt });
  return out;
}

function parseMessages(raw: unknown): ChatMessage[] {
  if (!Array.isArray(raw)) throw nodeError('invalid_input', 'The "messages" input must be a list like [{"role": "user", "content": "Hi"}].');
  return raw.map((m, i) => {
    const msg = m as { role?: unknown; content?: unknown };
    if (!msg || typeof msg !== 'object' || typeof msg.role !== 'string' || !ROLES.has(msg.role) || typeof msg.content !== 'string') {
      throw nodeError('invalid_input', `messages[${i}] must be {"role": "system"|"user"|"assistant"|"tool", "content": "text"}.`);
    }
    return { role: msg.role as ChatMessage['role'], content: msg.content };
  });
}

// Which settings a node shows, under which label and in which section. The schema (from the
// node registry) says what a field accepts; this says how a person meets it: in words, only the
// ones that matter for the chosen provider, the everyday ones first.

const LABELS: Record<string, string> = {
  file_id: 'Training file',
  file_type: 'File format',
  max_examples: 'Read at most (examples)',
  text: 'Examples',
  format: 'Format',
  provider: 'Provider',
  base_model: 'Base model',
  training_file_id: 'Training file (when nothing is connected)',
  validation_split: 'Validation share',
  epochs: 'Epochs',
  batch_size: 'Batch size',
  learning_rate: 'Learning rate',
  learning_rate_multiplier: 'Learning-rate multiplier',
  early_stopping_patience: 'Early-stopping patience (epochs)',
  lora_rank: 'LoRA rank',
  model_name: 'Model name suffix',
  seed: 'Random seed',
  device: 'Device (CPU or CUDA GPU)',
  wait_for_completion: 'Wait for training to finish',
  evaluate: 'Evaluate base vs fine-tuned after training',
  examples_file_id: 'Examples file (when nothing is connected)',
  compare_with_base: 'Compare with the base model',
  judge: 'Judge model (scores answers 1–5)',
  api_key: 'API key',
  base_url: 'Base URL',
  model: 'Model',
  use_finetuned_model: 'Use a fine-tuned model',
  finetuned_model: 'Fine-tuned model',
  system_prompt: 'System prompt',
  prompt: 'Prompt',
  temperature: 'Temperature',
  max_tokens: 'Longest reply (tokens)',
};

const ACRONYMS: Record<string, string> = { api: 'API', url: 'URL', id: 'ID', lora: 'LoRA', gguf: 'GGUF', llm: 'LLM' };

export function fieldLabel(key: string): string {
  if (LABELS[key]) return LABELS[key];
  const words = key.split('_').map((w) => ACRONYMS[w] ?? w);
  return words.map((w, i) => (i === 0 && w === w.toLowerCase() ? w.charAt(0).toUpperCase() + w.slice(1) : w)).join(' ');
}

type Provider = 'local' | 'openai' | 'anthropic';

interface FieldRule {
  /** Shown only for these providers (default: all). */
  providers?: Provider[];
  advanced?: boolean;
  /** Never shown on the canvas (a CLI-only option). */
  hidden?: boolean;
}

const RULES: Record<string, Record<string, FieldRule>> = {
  file_loader: { path: { hidden: true }, file_type: { advanced: true }, max_examples: { advanced: true } },
  data_loader: { format: { advanced: true } },
  finetune: {
    training_file_id: { advanced: true },
    batch_size: { advanced: true },
    learning_rate: { advanced: true, providers: ['local'] },
    learning_rate_multiplier: { advanced: true, providers: ['openai'] },
    early_stopping_patience: { advanced: true, providers: ['local'] },
    lora_rank: { advanced: true, providers: ['local'] },
    seed: { advanced: true },
    device: { advanced: true, providers: ['local'] },
    wait_for_completion: { advanced: true },
    evaluate: { advanced: true, providers: ['local'] },
    api_key: { providers: ['openai'] },
    base_url: { advanced: true, providers: ['openai'] },
  },
  evaluate: { examples_file_id: { advanced: true }, max_examples: { advanced: true }, judge: { advanced: true } },
  chat: {
    temperature: { advanced: true },
    max_tokens: { advanced: true },
    seed: { advanced: true },
    api_key: { providers: ['openai', 'anthropic'] },
    base_url: { advanced: true, providers: ['openai', 'anthropic'] },
  },
};

/** Fields that hold a key: edited through the key picker, stored as `$secret:NAME` only. */
export const SECRET_FIELDS = new Set(['api_key']);

export interface FieldSections {
  basic: string[];
  advanced: string[];
}

/** The fields to show for a node of this type with this config, in schema order. */
export function visibleFields(nodeType: string, keys: string[], config: Record<string, unknown>, defaultProvider = 'local'): FieldSections {
  const rules = RULES[nodeType] ?? {};
  const provider = String(config.provider ?? defaultProvider) as Provider;
  const out: FieldSections = { basic: [], advanced: [] };
  for (const key of keys) {
    const rule = rules[key] ?? {};
    if (rule.hidden) continue;
    if (rule.providers && !rule.providers.includes(provider)) continue;
    // A chat with a fine-tuned model names that model; the plain model field then does nothing.
    if (nodeType === 'chat' && key === 'model' && config.use_finetuned_model === true) continue;
    if (nodeType === 'chat' && key === 'finetuned_model' && config.use_finetuned_model !== true) continue;
    (rule.advanced ? out.advanced : out.basic).push(key);
  }
  return out;
}

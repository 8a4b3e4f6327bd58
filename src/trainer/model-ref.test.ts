import { describe, expect, it } from 'vitest';
import { parseModelRef } from './model-ref.ts';
import { ModelSourceError } from './model-source-errors.ts';

describe('parseModelRef', () => {
  it('reads every kind of model reference into one typed value', () => {
    expect(parseModelRef('nodeai-tiny')).toEqual({ kind: 'builtin', name: 'nodeai-tiny', text: 'nodeai-tiny' });
    expect(parseModelRef(' tiny ')).toMatchObject({ kind: 'builtin', text: 'nodeai-tiny' });
    expect(parseModelRef('/models/SmolLM2-135M.Q8_0.gguf')).toEqual({ kind: 'path', path: '/models/SmolLM2-135M.Q8_0.gguf', text: '/models/SmolLM2-135M.Q8_0.gguf' });
    expect(parseModelRef('ft:nodeai-tiny:faq:1234abcd')).toEqual({ kind: 'name', name: 'ft:nodeai-tiny:faq:1234abcd', text: 'ft:nodeai-tiny:faq:1234abcd' });
    expect(parseModelRef('my-support-bot')).toMatchObject({ kind: 'name', name: 'my-support-bot' });
  });

  it('reads hf: references by quant tag (upper-cased) or by file', () => {
    expect(parseModelRef('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:q4_k_m')).toEqual({
      kind: 'hf',
      owner: 'Qwen',
      repo: 'Qwen2.5-0.5B-Instruct-GGUF',
      quant: 'Q4_K_M',
      text: 'hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M',
    });
    expect(parseModelRef('hf:bartowski/SmolLM2-135M-Instruct-GGUF')).toEqual({ kind: 'hf', owner: 'bartowski', repo: 'SmolLM2-135M-Instruct-GGUF', text: 'hf:bartowski/SmolLM2-135M-Instruct-GGUF' });
    expect(parseModelRef('hf:unsloth/Qwen3-0.6B-GGUF:latest')).toEqual({ kind: 'hf', owner: 'unsloth', repo: 'Qwen3-0.6B-GGUF', text: 'hf:unsloth/Qwen3-0.6B-GGUF' });
    expect(parseModelRef('hf:ggml-org/models/sub/dir/tiny.Q8_0.gguf')).toEqual({
      kind: 'hf',
      owner: 'ggml-org',
      repo: 'models',
      file: 'sub/dir/tiny.Q8_0.gguf',
      text: 'hf:ggml-org/models/sub/dir/tiny.Q8_0.gguf',
    });
  });

  it('reads ollama: references with the default tag and namespaces', () => {
    expect(parseModelRef('ollama:qwen2.5:0.5b')).toEqual({ kind: 'ollama', namespace: 'library', name: 'qwen2.5', tag: '0.5b', text: 'ollama:qwen2.5:0.5b' });
    expect(parseModelRef('ollama:smollm2')).toEqual({ kind: 'ollama', namespace: 'library', name: 'smollm2', tag: 'latest', text: 'ollama:smollm2:latest' });
    expect(parseModelRef('ollama:someone/custom:v1')).toMatchObject({ namespace: 'someone', name: 'custom', tag: 'v1', text: 'ollama:someone/custom:v1' });
  });

  it.each([
    ['', /empty/],
    ['hf:Qwen', /hf:OWNER\/REPO:QUANT/],
    ['hf:Qwen/Repo:', /quant tag/],
    ['hf:Qwen/Repo/README.md', /not a \.gguf file/],
    ['hf:Qwen/Repo/../x.gguf', /"\.\."/],
    ['hf:/Repo:Q4_K_M', /hf:OWNER\/REPO:QUANT/],
    ['ollama:', /ollama:NAME/],
    ['ollama:a/b/c', /ollama:NAME/],
    ['https://huggingface.co/Qwen/x/resolve/main/a.gguf', /URLs are not accepted/],
  ])('refuses %j with a message that shows the right form', (text, message) => {
    let err: unknown;
    try {
      parseModelRef(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModelSourceError);
    expect((err as ModelSourceError).code).toBe('invalid_model_ref');
    expect((err as Error).message).toMatch(message);
  });
});

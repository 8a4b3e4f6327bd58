// The evaluation service with a remote model and a judge, against a stand-in for OpenAI's chat
// completions API on loopback (this machine cannot reach api.openai.com).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenAIChatProvider } from '../providers/openai.ts';
import { startFakeServer, type FakeServer } from '../providers/testing.ts';
import { tempDir } from '../store/testing.ts';
import { evaluate, EvaluationRequest } from './evaluation-service.ts';

const qa = (q: string, a: string) => ({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] });
const SET = [qa('2+2?', 'four'), qa('Capital of France?', 'Paris'), qa('Say hi', 'hello there')];
// The "remote model" answers each question its own way; the judge scores every answer 4.
const ANSWERS: Record<string, string> = { '2+2?': 'four', 'Capital of France?': 'It is  Paris.', 'Say hi': 'Hi!' };

const completion = (content: string) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
});

describe('evaluate: a remote model and a judge', () => {
  let server: FakeServer;
  beforeAll(async () => {
    server = await startFakeServer((req) => {
      const body = JSON.parse(req.body) as { model: string; messages: { role: string; content: string }[] };
      if (body.model === 'judge-model') return { json: completion('Score: 4') };
      return { json: completion(ANSWERS[body.messages.at(-1)!.content] ?? '') };
    });
  });
  afterAll(() => server.close());

  it('scores the answers, has no loss, and records the judge with its rubric', async () => {
    const request = EvaluationRequest.parse({ models: [{ model: 'openai:gpt-4o-mini' }], data: { kind: 'examples', examples: SET }, judge: 'openai:judge-model' });
    const report = await evaluate(request, {
      models: { find: async () => undefined },
      dataDir: tempDir(),
      remoteChat: async () => new OpenAIChatProvider({ apiKey: 'sk-test', baseURL: `${server.url}/v1`, retry: { maxRetries: 0, initialDelayMs: 1 } }),
    });
    const name = 'openai:gpt-4o-mini';
    expect(report.summary[name]).toMatchObject({ loss: null, perplexity: null, exact_match: 1 / 3, contains_match: 2 / 3, judge_score: 4 });
    expect(report.examples.map((e) => [e.exact[name], e.contains[name], e.judge?.[name]])).toEqual([
      [true, true, 4],
      [false, true, 4],
      [false, false, 4],
    ]);
    expect(report.judge).toMatchObject({ model: 'openai:judge-model', rubric: expect.stringMatching(/^Score the ANSWER against the EXPECTED answer/) });
    const asked = server.requests.map((r) => JSON.parse(r.body) as { model: string; temperature: number; max_tokens: number; messages: { content: string }[] });
    const answers = asked.filter((b) => b.model === 'gpt-4o-mini');
    // Greedy, at most twice the expected answer's tokens (OpenAI's o200k: "four" is 1 token, "hello there" 2).
    expect(answers.map((b) => [b.temperature, b.max_tokens])).toEqual([
      [0, 2],
      [0, 2],
      [0, 4],
    ]);
    const judged = asked.filter((b) => b.model === 'judge-model');
    expect(judged).toHaveLength(3);
    expect(judged[1].messages[1].content).toContain('EXPECTED:\nParis\n\nANSWER:\nIt is  Paris.');
  });
});

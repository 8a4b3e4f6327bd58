// The evaluation report: what `nodeai eval`, the Evaluate node, POST /api/v1/evaluations and the
// automatic evaluation after fine-tuning produce, and what the canvas's compare view reads
// (GET /api/v1/models/:id/evaluation). Plain JSON, stored as it is in the model registry.

/** One model's totals over the examples. */
export interface ModelEvaluationSummary {
  /**
   * Mean next-token loss over every example's assistant tokens (the tokens the trainer puts its
   * loss on), weighted by token; null for a model that gives no log-probabilities (remote).
   */
  loss: number | null;
  /** exp(loss); null with it. */
  perplexity: number | null;
  /** Share (0–1) of examples whose generated answer equals the expected one (whitespace-normalised). */
  exact_match: number;
  /** Share (0–1) of examples whose generated answer contains the expected one (whitespace-normalised, case-folded). */
  contains_match: number;
  /** Assistant tokens the loss was taken over. */
  loss_tokens: number;
  /** Mean judge score (1–5) over the examples the judge scored; present only when a judge was used. */
  judge_score?: number | null;
}

/** One example: the prompt, the expected answer, and each model's answer and scores. */
export interface EvaluationExample {
  /** The conversation up to the expected answer (what each model was prompted with). */
  messages: { role: string; content: string }[];
  /** The example's last assistant message. */
  expected: string;
  answers: Record<string, string>;
  exact: Record<string, boolean>;
  contains: Record<string, boolean>;
  /** Mean loss over this example's assistant tokens (null: remote model, or no token counts). */
  loss: Record<string, number | null>;
  /** Judge scores 1–5 (null: the judge's reply held no score); only when a judge was used. */
  judge?: Record<string, number | null>;
}

export interface EvaluationReport {
  object: 'evaluation';
  /** Model names, in the order given (the base model first when base and fine-tuned are compared). */
  models: string[];
  summary: Record<string, ModelEvaluationSummary>;
  examples: EvaluationExample[];
  /** How answers were generated and compared, stated in the report so its numbers can be read. */
  method: {
    decoding: 'greedy';
    /** Max new tokens per answer: 2× the expected answer's tokens (in the model's tokenizer), capped at this. */
    max_new_tokens_cap: number;
    normalisation: string;
  };
  /** The judge and its rubric, when one scored the answers. */
  judge?: { model: string; rubric: string };
  created_at: number;
}

/** Progress: answers generated so far over all models × examples. */
export interface EvaluationProgress {
  done: number;
  total: number;
  model: string;
  phase: 'loss' | 'answers' | 'judge';
}

export const MAX_NEW_TOKENS_CAP = 256;

export const NORMALISATION =
  'Both texts are trimmed and every run of whitespace (spaces, tabs, newlines) becomes one space; exact match compares the results as they are, contains-match case-folds both and looks for the expected text inside the answer.';

export function normaliseAnswer(text: string): string {
  return text.trim().replace(/\s+/g, ' ');
}

export function isExactMatch(answer: string, expected: string): boolean {
  return normaliseAnswer(answer) === normaliseAnswer(expected);
}

export function isContainsMatch(answer: string, expected: string): boolean {
  return normaliseAnswer(answer).toLowerCase().includes(normaliseAnswer(expected).toLowerCase());
}

/** The answer budget of an example: twice the expected answer's tokens, at least 1, at most the cap. */
export function maxNewTokens(expectedTokens: number): number {
  return Math.min(MAX_NEW_TOKENS_CAP, Math.max(1, 2 * expectedTokens));
}

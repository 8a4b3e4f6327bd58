// `nodeai eval MODEL FILE`: runs a model (and, with --base, its base beside it) over a chat JSONL
// and reports loss, perplexity, exact and contains match — a table, or one JSON object.
import type { EvaluationProgress, EvaluationReport } from '../trainer/evaluation-report.ts';
import { evaluate, EvaluationRequest, openAIRemoteChat, choiceName } from '../jobs/evaluation-service.ts';
import { resolveModelFile } from '../trainer/model-source.ts';
import { disposeInference } from '../trainer/inference.ts';
import { ModelRegistry } from '../jobs/index.ts';
import { commonOptions, DATA_DIR_HELP, needArg, openStore, parse, printJson, table } from './app.ts';
import { progressPrinter } from './download-progress.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `Usage:
  nodeai eval MODEL FILE [--base MODEL] [--lora PATH] [--max-examples N] [--judge MODEL] [--json]

Runs MODEL over the chat examples in FILE (JSONL; each example's last message is the expected
assistant answer) and reports, per example and in total: loss and perplexity on the assistant
tokens (the tokens training puts its loss on; none for a remote model), and exact and contains
match of the greedy answer (at most 2× the expected answer's tokens, capped at 256). Both texts
are trimmed and whitespace runs become one space; contains-match also ignores case.

MODEL is a fine-tuned model's ID or name ("nodeai models list"), nodeai-tiny, a .gguf path,
hf:OWNER/REPO:QUANT, ollama:NAME[:TAG], or openai:MODEL (a remote model; key from
"nodeai secrets set OPENAI_API_KEY" or the environment).

Options:
  --base MODEL        also evaluate this model, side by side (e.g. the base it was trained from)
  --lora PATH         a LoRA adapter GGUF applied to MODEL
  --max-examples N    only the first N examples
  --judge MODEL       a chat model that also scores each answer 1–5 (the rubric is in the report)
${DATA_DIR_HELP}

With --json: one object {model, examples, loss, perplexity, exact_match, contains_match (shares
0–1), rows: per-example [{messages, expected, answers, exact, contains, loss}], base: {…} with
--base, report: the full report}.`;

const options = {
  ...commonOptions,
  base: { type: 'string' },
  lora: { type: 'string' },
  'max-examples': { type: 'string' },
  judge: { type: 'string' },
} as const;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, options, USAGE);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const model = needArg(positionals, 0, 'MODEL', USAGE);
  const file = needArg(positionals, 1, 'FILE', USAGE);
  if (positionals.length > 2) throw new UsageError(`unexpected argument '${positionals[2]}'\n\n${USAGE}`);
  const maxExamples = values['max-examples'] === undefined ? undefined : Number(values['max-examples']);
  if (maxExamples !== undefined && !(Number.isInteger(maxExamples) && maxExamples >= 1)) throw new UsageError(`--max-examples must be a whole number of at least 1, got ${JSON.stringify(values['max-examples'])}`);
  const parsed = EvaluationRequest.safeParse({
    models: [...(values.base ? [{ model: values.base }] : []), { model, ...(values.lora ? { lora: values.lora } : {}) }],
    data: { kind: 'path', path: file },
    ...(maxExamples ? { max_examples: maxExamples } : {}),
    ...(values.judge ? { judge: values.judge } : {}),
  });
  if (!parsed.success) throw new UsageError(`${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}\n\n${USAGE}`);
  const request = parsed.data;

  const store = await openStore(values);
  const download = progressPrinter();
  const bar = evaluationProgress(process.stderr);
  let report: EvaluationReport;
  try {
    report = await evaluate(request, {
      models: new ModelRegistry(store),
      dataDir: store.dataDir,
      files: store.files,
      workflowDir: process.cwd(),
      modelFile: async (ref) => {
        try {
          return await resolveModelFile(ref, { dataDir: store.dataDir, onProgress: download.onProgress });
        } finally {
          download.done();
        }
      },
      remoteChat: openAIRemoteChat({ getSecret: store.secrets.lookupKey, redactor: store.redactor }),
      onProgress: (p) => bar.update(p),
    });
  } finally {
    bar.end();
    await store.close();
    await disposeInference();
  }
  const name = choiceName(request.models.at(-1)!);
  const base = values.base ? choiceName(request.models[0]) : undefined;
  if (values.json) {
    printJson({
      model: name,
      examples: report.examples.length,
      ...totals(report, name),
      rows: report.examples,
      ...(base ? { base: { model: base, ...totals(report, base) } } : {}),
      report,
    });
    return 0;
  }
  console.log(describeReport(report));
  return 0;
}

function totals(report: EvaluationReport, model: string) {
  const { loss, perplexity, exact_match, contains_match, judge_score } = report.summary[model];
  return { loss, perplexity, exact_match, contains_match, ...(judge_score !== undefined ? { judge_score } : {}) };
}

const pct = (share: number) => `${(100 * share).toFixed(1)}%`;
const num = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v.toFixed(4));
const clip = (text: string, n: number) => {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > n ? `${flat.slice(0, n - 1)}…` : flat;
};

/** The readable report: totals per model, then one row per example. */
export function describeReport(report: EvaluationReport): string {
  const judged = report.judge !== undefined;
  const totalsTable = table(
    ['model', 'loss', 'perplexity', 'exact', 'contains', ...(judged ? ['judge (1-5)'] : [])],
    report.models.map((m) => {
      const s = report.summary[m];
      return [m, num(s.loss), num(s.perplexity), pct(s.exact_match), pct(s.contains_match), ...(judged ? [num(s.judge_score)] : [])];
    }),
  );
  const rows = table(
    ['#', 'prompt', 'expected', ...report.models.map((m) => `answer: ${m}`)],
    report.examples.map((e, i) => [
      i + 1,
      clip(e.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '', 30),
      clip(e.expected, 24),
      ...report.models.map((m) => `${e.exact[m] ? '=' : e.contains[m] ? '~' : 'x'} ${clip(e.answers[m], 24)}`),
    ]),
  );
  const judge = report.judge ? `\nJudge: ${report.judge.model}. Rubric: ${report.judge.rubric}` : '';
  return `${report.examples.length} examples\n\n${totalsTable}\n\n${rows}\n\n= exact match, ~ contains the expected answer, x neither. ${report.method.normalisation}${judge}`;
}

/** A live bar on a terminal; a line every few seconds otherwise (logs, CI, pipes). */
function evaluationProgress(stream: NodeJS.WriteStream) {
  const tty = !!stream.isTTY;
  let last = 0;
  let drawn = false;
  return {
    update(p: EvaluationProgress) {
      const what = p.phase === 'loss' ? `${p.model}: loss` : p.phase === 'judge' ? `judging` : `${p.model}: answers`;
      if (tty) {
        const width = 24;
        const filled = p.total ? Math.round((width * p.done) / p.total) : 0;
        stream.write(`\r\x1b[Kevaluating [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total} ${what}`);
        drawn = true;
        return;
      }
      const now = Date.now();
      if (p.done !== p.total && now - last < 5000) return;
      last = now;
      stream.write(`evaluating: ${p.done}/${p.total} (${what})\n`);
    },
    end() {
      if (drawn) stream.write('\n');
      drawn = false;
    },
  };
}

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { until } from '../store/testing.ts';
import { probeCuda } from '../trainer/ggml/device.ts';
import { main } from './main.ts';

const BIN = fileURLToPath(new URL('../../bin/nodeai.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'nodeai-finetune-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const QA: Array<[string, string]> = [
  ['What color is the sky?', 'Blue.'], ['Capital of France?', 'Paris.'], ['What is 2+2?', 'Four.'], ['Best pet?', 'A cat.'],
  ['Who wrote Hamlet?', 'Shakespeare.'], ['Largest planet?', 'Jupiter.'], ['Water boils at?', '100 C.'], ['Opposite of hot?', 'Cold.'],
  ['Color of grass?', 'Green.'], ['Fastest land animal?', 'Cheetah.'], ['Water freezes at?', '0 C.'], ['Hello?', 'Hi there!'],
  ['Day after Monday?', 'Tuesday.'], ['Where does the sun rise?', 'The east.'], ['What do bees make?', 'Honey.'], ['What do cows say?', 'Moo.'],
  ['Three times three?', 'Nine.'], ['What is ice?', 'Frozen water.'], ['What does the moon orbit?', 'The Earth.'], ['Do dogs bark?', 'Yes, woof.'],
];
const line = (q: string, a: string) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] });

interface Done {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the installed-style entry point from a folder outside the repository, as a user would. */
function nodeai(args: string[], opts: { input?: string; onStart?: (kill: (s: NodeJS.Signals) => void) => void } = {}): Promise<Done> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
    opts.onStart?.((s) => child.kill(s));
  });
}

describe('nodeai finetune + nodeai chat (real processes, real files)', () => {
  it('trains nodeai-tiny until it answers a training question; Ctrl-C keeps a checkpoint and the same command resumes', async () => {
    writeFileSync(join(root, 'qa.jsonl'), QA.map(([q, a]) => line(q, a)).join('\n') + '\n');
    const args = ['finetune', 'qa.jsonl', '--provider', 'local', '--out', 'out', '--epochs', '50', '--batch-size', '4', '--seed', '1', '--threads', '1', '--data-dir', 'data'];
    const ckpts = join(root, 'out', 'checkpoints');

    const first = await nodeai(args, {
      onStart: (kill) => void until(() => existsSync(ckpts) && readdirSync(ckpts).some((f) => f.endsWith('.ckpt')), { ms: 60_000, every: 50, what: 'a checkpoint' }).then(() => kill('SIGINT'), () => kill('SIGKILL')),
    });
    expect(first.stderr).toMatch(/Fine-tuning nodeai-tiny on 16 examples \(\+4 for validation\)/);
    expect(first.stderr).toMatch(/epoch \d+\/50 step \d+\/200 \(\d+%\) · loss [\d.]+/);
    expect(first.stdout).toMatch(/Paused at step \d+\. The checkpoint is kept in .*run the same command again to resume \(or "nodeai jobs resume ftjob-\w+"/);
    expect(first.code).toBe(130);
    expect(JSON.parse(readFileSync(join(root, 'out', 'job.json'), 'utf8')).status).toBe('cancelled');

    const second = await nodeai([...args, '--json']);
    expect(second.stderr).toMatch(/Resuming from the checkpoint at step \d+ of 200/);
    expect(second.code).toBe(0);
    const job = JSON.parse(second.stdout.trim().split('\n').at(-1)!);
    expect(job).toMatchObject({ object: 'fine_tuning.job', status: 'succeeded', fine_tuned_model: 'ft-nodeai-tiny', hyperparameters: { n_epochs: 50, batch_size: 4 }, error: null });
    expect(job.trained_tokens).toBeGreaterThan(10_000);
    expect(readFileSync(join(root, 'out', 'job.json'), 'utf8')).toContain('"status": "succeeded"');
    expect(readFileSync(join(root, 'out', 'ft-nodeai-tiny.gguf')).subarray(0, 4).toString()).toBe('GGUF');
    // Both runs are jobs of the data dir's queue: the paused one gave way to the one that finished.
    const listed = JSON.parse((await nodeai(['jobs', 'list', '--json', '--data-dir', 'data'])).stdout).data;
    expect(listed.map((j: { status: string }) => j.status)).toEqual(['succeeded', 'cancelled']);

    const metrics = readFileSync(join(root, 'out', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'metrics');
    expect(metrics.map((m) => m.step)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(metrics[0].train_loss / metrics.at(-1).train_loss).toBeGreaterThan(5);

    // A question the model trained on (the split decides which ones).
    const trained = readFileSync(join(root, 'out', 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).messages);
    const [q1, a1] = [trained[0][0].content, trained[0][1].content];
    const [q2, a2] = [trained[5][0].content, trained[5][1].content];
    const chat = await nodeai(['chat', '--model', 'out/ft-nodeai-tiny.gguf', '--prompt', q1]);
    expect(chat.stderr).toBe('');
    expect(chat.stdout.trim()).toBe(a1);
    expect(chat.code).toBe(0);

    // Interactive, piped: one answer per line, the conversation forgotten on /reset.
    const talk = await nodeai(['chat', '--model', 'out/ft-nodeai-tiny.gguf'], { input: `${q1}\n/reset\n${q2}\n` });
    expect(talk.stdout.trim().split('\n')).toEqual([a1, '(conversation forgotten)', a2]);
    expect(talk.code).toBe(0);
  }, 150_000);
});

describe('nodeai finetune: the evaluation after training', () => {
  it('evaluates base vs fine-tuned on the validation split into DIR/evaluation.json; --no-evaluate skips it', async () => {
    writeFileSync(join(root, 'qa-eval.jsonl'), QA.map(([q, a]) => line(q, a)).join('\n') + '\n');
    const args = (out: string) => ['finetune', 'qa-eval.jsonl', '--out', out, '--epochs', '1', '--threads', '1', '--data-dir', 'eval-data'];
    const on = await nodeai(args('eval-on'));
    expect(on.code).toBe(0);
    expect(on.stderr).toMatch(/Evaluated on 4 validation examples\. nodeai-tiny: loss \d+\.\d{4}, exact \d+%; ft:nodeai-tiny::\w+: loss/);
    const report = JSON.parse(readFileSync(join(root, 'eval-on', 'evaluation.json'), 'utf8'));
    expect(report).toMatchObject({ object: 'evaluation', models: ['nodeai-tiny', expect.stringMatching(/^ft:nodeai-tiny::/)] });
    expect(report.examples).toHaveLength(4);
    const off = await nodeai([...args('eval-off'), '--no-evaluate']);
    expect(off.code).toBe(0);
    expect(off.stderr).not.toMatch(/Evaluat/);
    expect(existsSync(join(root, 'eval-off', 'evaluation.json'))).toBe(false);
  });
});

describe('nodeai finetune --device', () => {
  it('refuses an unknown device by the option, and a CUDA this machine cannot use by what is missing; auto says why it trains on the CPU', async () => {
    writeFileSync(join(root, 'qa-device.jsonl'), QA.map(([q, a]) => line(q, a)).join('\n') + '\n');
    const args = (out: string, device: string) => ['finetune', 'qa-device.jsonl', '--out', out, '--epochs', '1', '--threads', '1', '--no-evaluate', '--data-dir', 'device-data', '--device', device];
    const unknown = await nodeai(args('device-gpu', 'gpu'));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--device: Invalid option: expected one of "auto"|"cpu"|"cuda"');
    const probe = probeCuda();
    if (probe.ok) return; // a machine with a usable CUDA GPU trains there; nothing below applies
    const cuda = await nodeai(args('device-cuda', 'cuda'));
    expect(cuda.code).toBe(1);
    expect(cuda.stderr).toContain(`Cannot train on CUDA: missing ${probe.missing}. To fix: ${probe.fix}`);
    const auto = await nodeai(args('device-auto', 'auto'));
    expect(auto.code).toBe(0);
    expect(auto.stderr).toContain(`device "auto" found no usable CUDA device (missing ${probe.missing})`);
  });
});

describe('nodeai finetune: bad input', () => {
  let out = '';
  let err = '';
  const capture = () => {
    out = '';
    err = '';
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (out += a.join(' ') + '\n'));
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void (err += a.join(' ') + '\n'));
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  };
  afterEach(() => vi.restoreAllMocks());
  const data = join(root, 'bad-data.jsonl');
  writeFileSync(data, QA.slice(0, 12).map(([q, a]) => line(q, a)).join('\n') + '\n');
  const dataDir = ['--data-dir', join(root, 'bad-input-data')];

  it('explains usage errors, other providers and a missing base with exit 2 or 1', async () => {
    capture();
    expect(await main(['finetune'])).toBe(2);
    expect(err).toMatch(/needs a FILE/);
    expect(await main(['finetune', data])).toBe(2);
    expect(err).toMatch(/needs --out DIR/);
    expect(await main(['finetune', data, '--out', join(root, 'x'), '--epochs', 'many'])).toBe(2);
    expect(err).toMatch(/--epochs must be a number or 'auto', got 'many'/);
    // Ranges are the FineTuneRequest's, named by the option.
    expect(await main(['finetune', data, '--out', join(root, 'x'), '--epochs', '51'])).toBe(2);
    expect(err).toMatch(/--epochs: .*<=50/);
    expect(await main(['finetune', data, '--out', join(root, 'x'), '--validation-split', '1'])).toBe(2);
    expect(err).toMatch(/--validation-split: .*<=0\.99/);
    expect(await main(['finetune', data, '--out', join(root, 'x'), '--provider', 'anthropic'])).toBe(1);
    expect(err).toMatch(/Anthropic offers no fine-tuning API/);
    vi.stubEnv('OPENAI_API_KEY', '');
    expect(await main(['finetune', data, '--out', join(root, 'x'), '--provider', 'openai', '--data-dir', join(root, 'empty-vault')])).toBe(1);
    expect(err).toMatch(/Training failed: OpenAI API key not found\. Add it .*nodeai secrets set OPENAI_API_KEY/);
    vi.unstubAllEnvs();
    expect(await main(['finetune', data, '--out', join(root, 'x'), '--base', join(root, 'missing.gguf')])).toBe(2);
    expect(err).toMatch(/--base .*missing\.gguf: no such GGUF file/);
    expect(await main(['finetune', join(root, 'no-such.jsonl'), '--out', join(root, 'x')])).toBe(2);
    expect(existsSync(join(root, 'x', 'job.json'))).toBe(false);
  });

  it('prints dataset errors with their lines, and leaves out an example too long for the context by its line', async () => {
    capture();
    writeFileSync(join(root, 'empty.jsonl'), '\n');
    expect(await main(['finetune', join(root, 'empty.jsonl'), '--out', join(root, 'e'), ...dataDir])).toBe(1);
    expect(out + err).toMatch(/no training data|no examples/i);

    const broken = join(root, 'broken.jsonl');
    writeFileSync(broken, [...QA.slice(0, 11).map(([q, a]) => line(q, a)), JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] })].join('\n') + '\n');
    expect(await main(['finetune', broken, '--out', join(root, 'b'), ...dataDir])).toBe(1);
    expect(out).toMatch(/line 12/);
    expect(err).toMatch(/Nothing was trained/);

    const long = join(root, 'long.jsonl');
    const rows = QA.slice(0, 12).map(([q, a]) => line(q, a));
    rows[6] = line('Tell me everything.', 'y'.repeat(300));
    writeFileSync(long, rows.join('\n') + '\n');
    expect(await main(['finetune', long, '--out', join(root, 'l'), '--threads', '1', '--epochs', '1', ...dataDir])).toBe(0);
    expect(err).toMatch(/Left out 1 example longer than nodeai-tiny's context of 256 tokens: line 7 \(\d+ tokens\)/);
    expect(err).toMatch(/Fine-tuning nodeai-tiny on 9 examples \(\+2 for validation\)/);
  });

  it('refuses a corrupt GGUF base before any job', async () => {
    capture();
    const corrupt = join(root, 'corrupt.gguf');
    writeFileSync(corrupt, Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(64, 0x7f)]));
    expect(await main(['finetune', data, '--out', join(root, 'c'), '--base', corrupt, '--threads', '1', ...dataDir])).toBe(1);
    expect(err).toMatch(/Nothing was trained \(invalid_base_model\): Cannot fine-tune .*corrupt\.gguf/);
    expect(existsSync(join(root, 'c', 'job.json'))).toBe(false);
  });

  it('offers the learning rate that fits the provider', async () => {
    capture();
    await expect(main(['finetune', data, '--out', join(root, 'x'), '--provider', 'openai', '--learning-rate', '0.001'])).resolves.toBe(2);
    expect(err).toMatch(/--learning-rate: learning_rate \(an absolute rate\) is for the local trainer/);
  });
});

describe('nodeai finetune --provider openai (against a real NodeAI /v1 server)', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  it('uploads the checked split, creates the job, follows it to succeeded and writes job.json', async () => {
    const { startTestServer, TEST_TOKEN } = await import('../server/testing.ts');
    const { JobQueue, JobWorker } = await import('../jobs/index.ts');
    const { createNodeServices } = await import('../nodes/index.ts');
    const t = await startTestServer({ wire: (store) => { const jobs = new JobQueue(store); return { jobs, chat: createNodeServices(store, { jobs }).localChat }; } });
    const worker = new JobWorker(t.server.jobs!, { pollMs: 20, threads: 1 });
    worker.start();
    try {
      let err = '';
      vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
      vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (err += a.join(' ') + '\n'));
      // A stored key goes to another host only when it was stored with that host allowed.
      const { createStore } = await import('../store/index.ts');
      const vault = await createStore({ dataDir: join(root, 'remote-vault'), databaseUrl: '' });
      await vault.secrets.set('OPENAI_API_KEY', TEST_TOKEN, { allowedHosts: [new URL(t.url).host] });
      await vault.close();
      const data = join(root, 'remote.jsonl');
      writeFileSync(data, QA.slice(0, 12).map(([q, a]) => line(q, a)).join('\n') + '\n');
      const out = join(root, 'remote-out');
      const code = await main(['finetune', data, '--out', out, '--provider', 'openai', '--base', 'nodeai-tiny', '--base-url', `${t.url}/v1`, '--epochs', '1', '--name', 'cli', '--data-dir', join(root, 'remote-vault')]);
      expect(err).toMatch(/Created ftjob-/);
      expect(code).toBe(0);
      const job = JSON.parse(readFileSync(join(out, 'job.json'), 'utf8'));
      expect(job).toMatchObject({ object: 'fine_tuning.job', status: 'succeeded', model: 'nodeai-tiny', fine_tuned_model: expect.stringMatching(/^ft:nodeai-tiny:cli:/) });
      expect(job.validation_file).toMatch(/^file-/);
    } finally {
      await worker.stop();
      await t.close();
    }
  });
});

describe('nodeai finetune --provider openai: Ctrl-C', () => {
  it('cancels the remote job at once, not at the next poll', async () => {
    const { startTestServer, TEST_TOKEN } = await import('../server/testing.ts');
    const { JobQueue } = await import('../jobs/index.ts');
    const { followRemoteJob } = await import('./finetune-remote.ts');
    const { fineTune } = await import('../jobs/fine-tune-service.ts');
    const { OpenAIFineTuneProvider } = await import('../providers/openai.ts');
    const { parseFineTuneRequest } = await import('../providers/fine-tune-request.ts');
    // No worker: the job stays queued until cancelled.
    const t = await startTestServer({ wire: (store) => ({ jobs: new JobQueue(store) }) });
    try {
      const data = join(root, 'cancel.jsonl');
      writeFileSync(data, QA.slice(0, 12).map(([q, a]) => line(q, a)).join('\n') + '\n');
      const out = join(root, 'cancel-out');
      mkdirSync(out, { recursive: true });
      const provider = new OpenAIFineTuneProvider({ apiKey: TEST_TOKEN, baseURL: `${t.url}/v1` });
      const request = parseFineTuneRequest({ provider: 'openai', base_model: 'nodeai-tiny', data: { kind: 'path', path: data }, validation_split: 0, hyperparameters: { n_epochs: 1 } });
      const { job: created } = await fineTune(request, { provider, outDir: out, scratchDir: out });
      const controller = new AbortController();
      const started = Date.now();
      const done = followRemoteJob(provider, created, {
        out,
        pollMs: 60_000,
        signal: controller.signal,
        log: (l) => {
          if (l.startsWith('Created')) setTimeout(() => controller.abort(), 50);
        },
      });
      const job = await done;
      expect(job.status).toBe('cancelled');
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(JSON.parse(readFileSync(join(out, 'job.json'), 'utf8')).status).toBe('cancelled');
    } finally {
      vi.unstubAllEnvs();
      await t.close();
    }
  });
});

describe('nodeai chat: bad input', () => {
  afterEach(() => vi.restoreAllMocks());
  it('needs an existing model file', async () => {
    let err = '';
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void (err += a.join(' ') + '\n'));
    expect(await main(['chat'])).toBe(2);
    expect(err).toMatch(/needs --model PATH\.gguf/);
    expect(await main(['chat', '--model', join(root, 'nope.gguf'), '--prompt', 'hi'])).toBe(2);
    expect(err).toMatch(/--model .*nope\.gguf: no such file/);
    expect(await main(['chat', '--model', join(root, 'nope.gguf'), '--temperature', '-1'])).toBe(2);
  });
});

describe('finetune progress', () => {
  const m = (step: number, extra: object = {}) => ({ type: 'metrics' as const, time: 0, step, total_steps: 40, epoch: 1 + Math.floor((step - 1) / 10), total_epochs: 4, train_loss: 2.5, tokens_per_second: 1234.4, eta_seconds: 75, ...extra });

  it('redraws one line on a terminal, with messages above it', async () => {
    const { Progress } = await import('./finetune.ts');
    let out = '';
    const p = new Progress({ isTTY: true, columns: 200, write: (s: string) => ((out += s), true) } as never);
    p.update(m(10, { valid_loss: 2.75 }));
    p.update(m(20));
    p.line('Resuming…');
    p.end();
    const frames = out.split('\r\x1b[K').filter(Boolean);
    expect(frames[0]).toBe('epoch 1/4 ▕█████░░░░░░░░░░░░░░░▏ step 10/40 (25%) · loss 2.500 · valid 2.750 · ETA 1:15 · 1,234 tok/s');
    // The last valid loss stays on the line until the next evaluation.
    expect(frames[1]).toMatch(/^epoch 2\/4 ▕██████████░+▏ step 20\/40 \(50%\) · loss 2\.500 · valid 2\.750/);
    expect(frames[2]).toBe('Resuming…\n');
    expect(out.endsWith('\n')).toBe(true);
  });

  it('prints plain lines, not every step, when not on a terminal', async () => {
    const { Progress } = await import('./finetune.ts');
    let out = '';
    const p = new Progress({ isTTY: false, write: (s: string) => ((out += s), true) } as never);
    for (let s = 1; s <= 40; s++) p.update(m(s));
    expect(out.trim().split('\n').map((l) => l.match(/step (\d+)/)![1])).toEqual(['1', '40']);
    expect(out).not.toContain('\r');
  });
});

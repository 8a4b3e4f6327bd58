import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeChatForTraining } from './chat-format.ts';
import { probeCuda } from './ggml/device.ts';
import { loadGgml } from './ggml/lib.ts';
import { llamaQuantize } from './ggml/llama-quantize.ts';
import { readGgufModel, TRAINED_SYSTEM_PROMPT_KEY, writeGgufModel } from './gguf-model.ts';
import { metaString, readGgufHeader } from './gguf.ts';
import { disposeInference, generate } from './inference.ts';
import type { LocalFineTuneEvent, LocalFineTuneSpec } from './supervised-job-types.ts';
import { runLocalFineTune } from './supervisor.ts';
import type { JobObject } from './supervisor-protocol.ts';
import { SMALL_TINY_SHAPE, writeSmallTinyBase } from './small-tiny-base.ts';
import { createTinyModel } from './tiny-model.ts';
import { createTokenizer } from './tokenizer.ts';
import { createTrainer } from './train.ts';

const root = mkdtempSync(join(tmpdir(), 'nodeai-supervisor-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
// A smaller nodeai-tiny (same tokenizer and template), trained by path, so each run takes about a second.
const base = await writeSmallTinyBase(root);

function chatLine(q: string, a: string): string {
  return JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] });
}
const trainFile = join(root, 'train.jsonl');
writeFileSync(trainFile, Array.from({ length: 12 }, (_, i) => chatLine(`Question ${i}?`, `Answer ${i * 7}.`)).join('\n') + '\n');
const validFile = join(root, 'valid.jsonl');
writeFileSync(validFile, [chatLine('Question 3?', 'Answer 21.'), chatLine('Question 5?', 'Answer 35.')].join('\n') + '\n');

function spec(name: string, over: Partial<LocalFineTuneSpec> = {}): LocalFineTuneSpec {
  return { jobDir: join(root, name), trainingFile: trainFile, validationFile: validFile, baseModel: base, epochs: 4, batchSize: 2, seed: 3, threads: 1, ...over };
}

function events(dir: string): LocalFineTuneEvent[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as LocalFineTuneEvent);
}
const job = (dir: string) => JSON.parse(readFileSync(join(dir, 'job.json'), 'utf8')) as JobObject;
const metrics = (es: LocalFineTuneEvent[]) => es.filter((e): e is Extract<LocalFineTuneEvent, { type: 'metrics' }> => e.type === 'metrics');

describe('runLocalFineTune', () => {
  it('resumes a run killed after its first checkpoint and ends bit-identical to an uninterrupted run', async () => {
    const whole = spec('whole', { checkpointEverySeconds: 1e-6 });
    const seen: LocalFineTuneEvent[] = [];
    const a = await runLocalFineTune(whole, { onEvent: (e) => seen.push(e) });
    expect(a.status).toBe('succeeded');
    expect(a.resumed).toBe(false);
    expect(a.steps).toBe(24);
    // Events reach the caller and the file alike; validation runs at each epoch end.
    expect(events(whole.jobDir)).toEqual(seen);
    const m = metrics(seen);
    expect(m.map((e) => e.step)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
    expect(m.filter((e) => e.valid_loss !== undefined).map((e) => e.step)).toEqual(expect.arrayContaining([6, 12, 18, 24]));
    expect(m[23]).toMatchObject({ total_steps: 24, epoch: 4, total_epochs: 4, eta_seconds: 0 });
    expect(m[5].tokens_per_second).toBeGreaterThan(0);
    expect(m[5].train_mean_token_accuracy).toBeGreaterThanOrEqual(0);
    // A checkpoint after every step here, but only the newest two are kept.
    expect(seen.filter((e) => e.type === 'checkpoint').length).toBeGreaterThanOrEqual(24);
    expect(readdirSync(join(whole.jobDir, 'checkpoints')).filter((f) => f.endsWith('.ckpt'))).toEqual(['step-000000023.ckpt', 'step-000000024.ckpt']);
    const j = job(whole.jobDir);
    expect(j).toMatchObject({
      object: 'fine_tuning.job',
      status: 'succeeded',
      fine_tuned_model: 'ft-small-tiny',
      trained_tokens: a.trainedTokens,
      hyperparameters: { n_epochs: 4, batch_size: 2, learning_rate: 0.003, learning_rate_multiplier: 1 },
      result_files: ['ft-small-tiny.gguf', 'metrics.jsonl'],
      error: null,
      seed: 3,
    });
    expect(j.finished_at).toBeGreaterThanOrEqual(j.created_at);

    const broken = spec('broken');
    let pid = 0;
    const b = await runLocalFineTune(broken, {
      onSpawn: (p) => (pid = p),
      onEvent: (e) => {
        // Mid-epoch, three steps past the first (epoch-end) checkpoint: those steps must be redone.
        if (e.type === 'metrics' && e.step === 9 && pid) process.kill(pid, 'SIGKILL');
      },
    });
    const before = events(broken.jobDir);
    expect(before.find((e) => e.type === 'checkpoint')).toMatchObject({ step: 6, epoch: 1 });
    expect(Math.max(...metrics(before).map((e) => e.step))).toBeGreaterThanOrEqual(9);
    expect(b.status).toBe('failed');
    expect(b.error?.code).toBe('worker_crashed');
    expect(b.error?.message).toMatch(/SIGKILL.*\n?.*run the job again to resume/s);
    expect(job(broken.jobDir).status).toBe('failed');
    expect(existsSync(join(broken.jobDir, 'ft-small-tiny.gguf'))).toBe(false);

    const c = await runLocalFineTune(broken, {});
    expect(c.status).toBe('succeeded');
    expect(c.resumed).toBe(true);
    expect(c.finalMetrics).toEqual(a.finalMetrics);
    expect(c.trainedTokens).toBe(a.trainedTokens);
    const wa = readFileSync(a.modelPath!);
    const wc = readFileSync(c.modelPath!);
    expect(wc.equals(wa)).toBe(true);
    // The resumed run's metrics continue the curve: one event per step, the same losses.
    const mc = metrics(events(broken.jobDir));
    expect(mc.map((e) => e.step)).toEqual(m.map((e) => e.step));
    expect(mc.map((e) => e.train_loss)).toEqual(m.map((e) => e.train_loss));
    expect(events(broken.jobDir).some((e) => e.type === 'message' && /Resuming from the checkpoint at step \d+ of 24/.test(e.message))).toBe(true);

    // The same spec again on a finished job returns its result without training.
    const again = await runLocalFineTune(broken, {});
    expect(again).toMatchObject({ status: 'succeeded', modelPath: c.modelPath, steps: 24 });
    // Other settings on that directory are refused, and the job there is left alone.
    const other = await runLocalFineTune({ ...broken, epochs: 5 }, {});
    expect(other.error?.code).toBe('job_dir_in_use');
    expect(other.error?.message).toMatch(/epochs 4 \(this run: 5\)/);
    expect(job(broken.jobDir).status).toBe('succeeded');
    const changed = join(root, 'changed.jsonl');
    writeFileSync(changed, readFileSync(trainFile, 'utf8').replace('Answer 7.', 'Answer 8.'));
    const newData = await runLocalFineTune({ ...broken, trainingFile: changed }, {});
    expect(newData.error?.message).toMatch(/holds a run with other settings \(other training or validation data\)/);
  });

  it('turns a native abort in the child into a failed job with the signal and the last stderr lines', async () => {
    const s = spec('abort');
    // What a failed GGML_ASSERT does: a line on stderr, then SIGABRT. The line comes from a module
    // the child preloads (NODE_OPTIONS, as for any Node process); the signal from here, after step 3.
    const preload = join(root, 'says-goodbye.cjs');
    writeFileSync(preload, "process.stderr.write('ggml.c:1234: GGML_ASSERT(ne > 0) failed\\n');\n");
    let pid = 0;
    let lastStep = 0;
    const r = await runLocalFineTune(s, {
      env: { NODE_OPTIONS: [process.env.NODE_OPTIONS, `--require ${preload}`].filter(Boolean).join(' ') },
      onSpawn: (p) => (pid = p),
      onEvent: (e) => {
        if (e.type !== 'metrics') return;
        lastStep = e.step;
        if (e.step === 3) process.kill(pid, 'SIGABRT');
      },
    });
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('worker_crashed');
    expect(r.error?.message).toMatch(/killed by SIGABRT \(a native abort/);
    // The step the parent last heard of: 3, or one more the child finished before the signal landed.
    expect(lastStep).toBeGreaterThanOrEqual(3);
    expect(r.error?.message).toContain(`after step ${lastStep}.`);
    expect(r.error?.message).toMatch(/Its last output:\n(.*\n)*ggml\.c:1234: GGML_ASSERT\(ne > 0\) failed/);
    expect(job(s.jobDir)).toMatchObject({ status: 'failed', error: { code: 'worker_crashed' } });
    expect(events(s.jobDir).at(-1)).toMatchObject({ type: 'status', status: 'failed' });
  });

  it('kills a child that stops making progress (stopped, as if stuck in native code) and resumes from its checkpoint', async () => {
    const s = spec('stall', { checkpointEverySeconds: 1e-6 });
    let pid = 0;
    const started = Date.now();
    const r = await runLocalFineTune(s, {
      // Steps take milliseconds here, so the floor sets the allowance.
      stall: { startupMs: 30_000, floorMs: 400, capMs: 1_000 },
      onSpawn: (p) => (pid = p),
      onEvent: (e) => {
        if (e.type === 'checkpoint' && e.step === 3) process.kill(pid, 'SIGSTOP');
      },
    });
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('trainer_stalled');
    expect(r.error?.message).toMatch(/made no progress for \d+ s after step \d+ \(its steps took up to [\d.]+ s\), so it was stopped\. Its last checkpoint is kept/);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(() => process.kill(pid, 0)).toThrow();
    expect(job(s.jobDir)).toMatchObject({ status: 'failed', error: { code: 'trainer_stalled' } });

    const done = await runLocalFineTune(s, {});
    expect(done).toMatchObject({ status: 'succeeded', resumed: true, steps: 24 });
  });

  it('gives a child the start-up allowance before its first step, and says it stalled while starting', async () => {
    const s = spec('stall-start');
    let pid = 0;
    const r = await runLocalFineTune(s, {
      stall: { startupMs: 1_500, floorMs: 100, capMs: 200 },
      onSpawn: (p) => {
        pid = p;
        // Stopped before it could load anything: only the start-up allowance can notice.
        process.kill(p, 'SIGSTOP');
      },
    });
    expect(r.error?.code).toBe('trainer_stalled');
    expect(r.error?.message).toMatch(/made no progress for \d+ s while starting \(loading the model and data; the allowance is 2 s\)/);
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('kills the child at once, writing nothing, when its holder lost the job', async () => {
    const s = spec('lost', { checkpointEverySeconds: 1e-6 });
    const kill = new AbortController();
    const r = await runLocalFineTune(s, {
      kill: kill.signal,
      onEvent: (e) => {
        if (e.type === 'metrics' && e.step === 2) kill.abort(new Error('job ftjob-x was taken over by another worker'));
      },
    });
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ code: 'lease_lost', message: 'The training process was stopped at once: job ftjob-x was taken over by another worker.' });
    // No failure written into the directory: it belongs to the new holder.
    expect(job(s.jobDir).status).not.toBe('failed');
  });

  it('a trainer whose job directory names a newer claim writes nothing more, and an older claim cannot start there', async () => {
    const s = spec('fenced', { checkpointEverySeconds: 1e-6, fencingToken: 1 });
    const r = await runLocalFineTune(s, {
      onEvent: (e) => {
        // Another worker took the job over (its holder was frozen past its lease) and claimed the directory.
        if (e.type === 'checkpoint' && e.step === 2) writeFileSync(join(s.jobDir, 'holder.json'), JSON.stringify({ token: 2 }));
      },
    });
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('lease_lost');
    const steps = metrics(events(s.jobDir)).map((e) => e.step);
    expect(Math.max(...steps)).toBeLessThanOrEqual(3);
    expect(job(s.jobDir).status).not.toMatch(/failed|succeeded/);
    expect(existsSync(join(s.jobDir, 'ft-small-tiny.gguf'))).toBe(false);

    expect((await runLocalFineTune(s, {})).error).toMatchObject({ code: 'lease_lost', message: expect.stringMatching(/newer claim \(2, this one is 1\)/) });
    expect(await runLocalFineTune({ ...s, fencingToken: 2 }, {})).toMatchObject({ status: 'succeeded', resumed: true, steps: 24 });
  });

  it('cancels through the AbortSignal with a checkpoint, and trains LoRA adapters', async () => {
    const s = spec('cancel', { loraRank: 4, epochs: 3, learningRate: 1e-2 });
    const ac = new AbortController();
    const r = await runLocalFineTune(s, {
      onEvent: (e) => {
        if (e.type === 'metrics' && e.step === 2) ac.abort();
      },
      signal: ac.signal,
    });
    expect(r.status).toBe('cancelled');
    expect(r.steps).toBeGreaterThanOrEqual(2);
    expect(r.steps).toBeLessThan(18);
    expect(job(s.jobDir).status).toBe('cancelled');
    expect(readdirSync(join(s.jobDir, 'checkpoints')).some((f) => f === `step-${String(r.steps).padStart(9, '0')}.ckpt`)).toBe(true);

    const done = await runLocalFineTune(s, {});
    expect(done).toMatchObject({ status: 'succeeded', resumed: true, steps: 18 });
    expect(done.adapterPath).toBe(join(s.jobDir, 'ft-small-tiny.lora.gguf'));
    expect(readFileSync(done.adapterPath!).subarray(0, 4).toString()).toBe('GGUF');
    expect(job(s.jobDir)).toMatchObject({ hyperparameters: { lora_rank: 4, lora_alpha: 4 }, result_files: ['ft-small-tiny.gguf', 'ft-small-tiny.lora.gguf', 'metrics.jsonl'] });
  });

  it('trains LoRA from a GGUF base file; the adapter loads onto that base in llama.cpp', async () => {
    const other = join(root, 'base.gguf');
    await writeGgufModel(other, createTinyModel({ seed: 9, ...SMALL_TINY_SHAPE }));
    // Every example starts with the same system prompt: the model file records it for exports.
    const withSystem = join(root, 'train-system.jsonl');
    writeFileSync(withSystem, Array.from({ length: 12 }, (_, i) => JSON.stringify({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: `Question ${i}?` }, { role: 'assistant', content: `Answer ${i * 7}.` }] })).join('\n') + '\n');
    const s = spec('from-gguf', { baseModel: other, epochs: 1, outputName: 'mine', loraRank: 2, trainingFile: withSystem });
    const r = await runLocalFineTune(s, {});
    expect(r).toMatchObject({ status: 'succeeded', steps: 6, modelPath: join(s.jobDir, 'mine.gguf'), adapterPath: join(s.jobDir, 'mine.lora.gguf') });
    const out = await readGgufModel(r.modelPath!);
    expect(out.name).toBe('mine');
    expect(metaString(await readGgufHeader(r.modelPath!), TRAINED_SYSTEM_PROMPT_KEY)).toBe('Be brief.');
    expect(out.config).toEqual((await readGgufModel(other)).config);
    expect(job(s.jobDir)).toMatchObject({ model: other, fine_tuned_model: 'mine' });
    // The adapter loads onto its base in llama.cpp and generates.
    try {
      const g = await generate({ model: other, lora: r.adapterPath!, messages: [{ role: 'user', content: 'Question 1?' }], maxTokens: 3, threads: 1 });
      expect(g.usage.completionTokens).toBeGreaterThan(0);
    } finally {
      await disposeInference();
    }
  });

  it('trains LoRA on a quantized GGUF base (its adapter runs on that file) and refuses full fine-tuning of it', async () => {
    const f32 = join(root, 'qbase-f32.gguf');
    await writeGgufModel(f32, createTinyModel({ seed: 9, ...SMALL_TINY_SHAPE }));
    const quantized = join(root, 'qbase-q8_0.gguf');
    llamaQuantize(f32, quantized, 'Q8_0');
    const s = spec('from-q8', { baseModel: quantized, epochs: 1, outputName: 'mine-q8', loraRank: 2 });
    const r = await runLocalFineTune(s, {});
    expect(r).toMatchObject({ status: 'succeeded', adapterPath: join(s.jobDir, 'mine-q8.lora.gguf') });
    // The merged model keeps the base's Q8_0 weights as they were and writes the LoRA targets
    // (merged) as F16: no float32 copy of the model.
    const merged = await readGgufHeader(r.modelPath!);
    const types = new Map(merged.tensors.map((t) => [t.name, t.typeName]));
    expect(types.get('blk.0.attn_q.weight')).toBe('F16');
    expect(types.get('blk.0.ffn_down.weight')).toBe('F16');
    expect(types.get('token_embd.weight')).toBe('Q8_0');
    expect(types.get('blk.0.attn_norm.weight')).toBe('F32');
    // No system prompt in the training data: none recorded.
    expect(merged.metadata.has(TRAINED_SYSTEM_PROMPT_KEY)).toBe(false);
    expect(statSync(r.modelPath!).size).toBeLessThan(statSync(f32).size);
    try {
      const g = await generate({ model: quantized, lora: r.adapterPath!, messages: [{ role: 'user', content: 'Question 1?' }], maxTokens: 3, threads: 1 });
      expect(g.usage.completionTokens).toBeGreaterThan(0);
    } finally {
      await disposeInference();
    }
    const full = await runLocalFineTune(spec('full-q8', { baseModel: quantized, epochs: 1 }), {});
    expect(full.error?.code).toBe('invalid_base_model');
    expect(full.error?.message).toMatch(/quantized \(Q8_0.*full fine-tuning needs F32, F16 or BF16 weights — train a LoRA adapter on it instead/);
  });

  it('fails with clear typed errors on bad inputs', async () => {
    const missing = await runLocalFineTune(spec('missing', { baseModel: join(root, 'nope.gguf') }), {});
    expect(missing.error).toMatchObject({ code: 'base_model_not_found' });
    expect(missing.error?.message).toMatch(/nope\.gguf does not exist/);

    const corrupt = join(root, 'corrupt.gguf');
    writeFileSync(corrupt, Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(40, 0xff)]));
    const bad = await runLocalFineTune(spec('corrupt', { baseModel: corrupt }), {});
    expect(bad.error?.code).toBe('invalid_base_model');
    expect(bad.error?.message).toMatch(/corrupt\.gguf/);

    const empty = join(root, 'empty.jsonl');
    writeFileSync(empty, '\n');
    const none = await runLocalFineTune(spec('empty', { trainingFile: empty, validationFile: null }), {});
    expect(none.error?.code).toBe('empty_dataset');

    const long = join(root, 'long.jsonl');
    writeFileSync(long, [chatLine('Hi?', 'Hello.'), chatLine('Tell me everything.', 'x'.repeat(400)), chatLine('Bye?', 'Bye.')].join('\n') + '\n');
    const tooLong = await runLocalFineTune(spec('long', { trainingFile: long, validationFile: null }), {});
    expect(tooLong.error).toMatchObject({ code: 'example_too_long', file: long, line: 2 });
    expect(tooLong.error?.message).toMatch(/line 2: .*context of 256 tokens/);
    expect(job(join(root, 'long'))).toMatchObject({ status: 'failed', error: { code: 'example_too_long', line: 2 } });

    // What the supervisor uses itself is refused before anything is written…
    const invalid = await runLocalFineTune(spec('invalid', { outputName: '../escape' }), {});
    expect(invalid.error?.code).toBe('invalid_spec');
    expect(invalid.error?.message).toMatch(/outputName must be a file stem/);
    expect(existsSync(join(root, 'invalid'))).toBe(false);
    // …and a hyperparameter the trainer cannot take is the trainer's refusal, with the same code.
    const zeroEpochs = await runLocalFineTune(spec('zero-epochs', { epochs: 0 }), {});
    expect(zeroEpochs.error).toMatchObject({ code: 'invalid_spec', message: expect.stringMatching(/epochs must be a positive integer \(got 0\)/) });
    expect(job(join(root, 'zero-epochs'))).toMatchObject({ status: 'failed', error: { code: 'invalid_spec' } });
  });
});

describe('device', () => {
  it('trains on the device the spec asks for and says which and why in its events; an unusable CUDA is refused by name', async () => {
    const probe = probeCuda();
    const cpu = await runLocalFineTune(spec('device-cpu', { epochs: 1, device: 'cpu' }), {});
    expect(cpu.status).toBe('succeeded');
    expect(events(join(root, 'device-cpu'))).toContainEqual(expect.objectContaining({ type: 'message', message: expect.stringMatching(/^Training on CPU \(ggml-cpu \w+\): device "cpu" was asked for\.$/) }));
    expect(job(join(root, 'device-cpu')).nodeai.device).toBe('cpu');
    // …and who computes its matmuls (oneDNN, OpenBLAS or ggml-cpu's kernels), and why.
    const matmuls = events(join(root, 'device-cpu')).find((e) => e.type === 'message' && e.message.startsWith('Matmuls '));
    expect(matmuls).toMatchObject({ message: expect.stringMatching(/^Matmuls (through (oneDNN|OpenBLAS) .+|on ggml-cpu's kernels): matmul "auto" .+\.$/) });

    const auto = await runLocalFineTune(spec('device-auto', { epochs: 1 }), {});
    expect(auto.status).toBe('succeeded');
    expect(job(join(root, 'device-auto')).nodeai.device).toBe(probe.ok ? 'cuda' : 'cpu');
    if (probe.ok) return; // a machine with a usable CUDA device: the refusal below cannot happen
    const said = events(join(root, 'device-auto')).find((e) => e.type === 'message' && e.message.startsWith('Training on '));
    expect(said).toMatchObject({ message: `Training on CPU (ggml-cpu ${loadGgml().cpuVariant}): device "auto" found no usable CUDA device (missing ${probe.missing}).` });

    const cuda = await runLocalFineTune(spec('device-cuda', { epochs: 1, device: 'cuda' }), {});
    expect(cuda.error).toMatchObject({ code: 'device_unavailable', message: expect.stringContaining(`Cannot train on CUDA: missing ${probe.missing}. To fix: ${probe.fix}`) });
    expect(job(join(root, 'device-cuda'))).toMatchObject({ status: 'failed', error: { code: 'device_unavailable' } });
  });
});

describe('early stopping', () => {
  it('stops when the validation loss stops improving and writes the best epoch\'s model', async () => {
    // Validation unlike the training data: once the model memorizes the training answers, the
    // validation loss turns up.
    const unlike = join(root, 'unlike.jsonl');
    writeFileSync(unlike, [chatLine('Why is snow white?', 'Light scatters.'), chatLine('Where do owls sleep?', 'In hollow trees.')].join('\n') + '\n');
    const s = spec('early', { validationFile: unlike, epochs: 40, learningRate: 0.01, earlyStoppingPatience: 2 });
    const seen: LocalFineTuneEvent[] = [];
    const r = await runLocalFineTune(s, { onEvent: (e) => seen.push(e) });
    expect(r.status).toBe('succeeded');
    const j = job(s.jobDir);
    const early = j.nodeai.early_stopping!;
    expect(early).toBeDefined();
    expect(r.steps).toBeLessThan(40 * 6);
    const epochEnds = metrics(seen).filter((m) => m.step % 6 === 0 && m.valid_loss !== undefined);
    const losses = epochEnds.map((m) => m.valid_loss!);
    expect(early.best_valid_loss).toBe(Math.min(...losses));
    expect(early.stopped_at_epoch).toBe(early.best_epoch + 2);
    expect(losses.at(-1)!).toBeGreaterThan(early.best_valid_loss + 1e-3);
    expect(seen.some((e) => e.type === 'message' && e.message.startsWith(`Stopping early after epoch ${early.stopped_at_epoch} of 40`))).toBe(true);
    expect(r.finalMetrics?.valid_loss).toBe(early.best_valid_loss);

    // The model written is the best epoch's: measured again, it has that epoch's validation loss,
    // not the higher one of the epoch training stopped at.
    const written = await readGgufModel(join(s.jobDir, 'ft-small-tiny.gguf'));
    const tokenizer = await createTokenizer(written);
    const sequences = [
      ['Why is snow white?', 'Light scatters.'],
      ['Where do owls sleep?', 'In hollow trees.'],
    ].map(([q, a]) => encodeChatForTraining(written, tokenizer, [{ role: 'user', content: q }, { role: 'assistant', content: a }]));
    const trainer = createTrainer({ model: written, train: sequences, valid: sequences, epochs: 1, batchSize: 2, threads: 1 });
    try {
      expect(trainer.evaluate().validLoss).toBeCloseTo(early.best_valid_loss, 4);
    } finally {
      trainer.dispose();
      await tokenizer.dispose();
    }
  });

  it('remembers its best epoch across a resume and stops where an uninterrupted run stops', async () => {
    const unlike = join(root, 'unlike.jsonl');
    const whole = spec('early-whole', { validationFile: unlike, epochs: 40, learningRate: 0.01, earlyStoppingPatience: 2 });
    expect((await runLocalFineTune(whole, {})).status).toBe('succeeded');
    const expected = job(whole.jobDir).nodeai.early_stopping;
    expect(expected).toBeDefined();
    // Interrupted right after the best epoch's checkpoint, then the same spec again.
    const broken = spec('early-broken', { validationFile: unlike, epochs: 40, learningRate: 0.01, earlyStoppingPatience: 2 });
    const stop = new AbortController();
    const first = await runLocalFineTune(broken, { signal: stop.signal, onEvent: (e) => e.type === 'checkpoint' && e.epoch === expected!.best_epoch + 1 && stop.abort() });
    expect(first.status).toBe('cancelled');
    const again = await runLocalFineTune(broken, {});
    expect(again).toMatchObject({ status: 'succeeded', resumed: true });
    expect(job(broken.jobDir).nodeai.early_stopping).toEqual(expected);
  });
});

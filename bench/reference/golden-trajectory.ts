// Regenerates src/trainer/golden-trajectory.json: writes the golden run's inputs
// (src/trainer/golden-fixture.ts) to a temporary folder, trains on them with the PyTorch reference
// golden_trajectory.py (Debian's /usr/bin/python3 with python3-torch), and records its losses with
// the inputs' hash.
//
// Usage: npx tsx bench/reference/golden-trajectory.ts
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeGoldenInputs } from '../../src/trainer/golden-fixture.ts';

const PYTHON = '/usr/bin/python3';
const script = fileURLToPath(new URL('./golden_trajectory.py', import.meta.url));
const target = fileURLToPath(new URL('../../src/trainer/golden-trajectory.json', import.meta.url));

const inputs = encodeGoldenInputs();
const dir = mkdtempSync(join(tmpdir(), 'nodeai-golden-'));
try {
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(inputs.manifest));
  writeFileSync(join(dir, 'weights.bin'), inputs.weights);
  const out = execFileSync(PYTHON, [script, dir], { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
  const torchVersion = execFileSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).trim();
  const { runs } = JSON.parse(out) as { runs: Record<string, { float64: number[]; float32: number[] }> };
  const golden = {
    about:
      'Per-step training losses of the golden runs (src/trainer/golden-fixture.ts) from the PyTorch reference in float64 ' +
      '(float32: the same reference in float32). Regenerate with: npx tsx bench/reference/golden-trajectory.ts',
    torch: torchVersion,
    inputsSha256: inputs.sha256,
    runs,
  };
  writeFileSync(target, `${JSON.stringify(golden, null, 2)}\n`);
  for (const [name, r] of Object.entries(runs)) {
    const drift = Math.max(...r.float64.map((v, i) => Math.abs(v - r.float32[i])));
    console.log(`${name}: ${r.float64.length} steps, loss ${r.float64[0].toFixed(4)} → ${r.float64.at(-1)!.toFixed(4)}; float32 vs float64 max |Δ| ${drift.toExponential(2)}`);
  }
  console.log(`wrote ${target}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

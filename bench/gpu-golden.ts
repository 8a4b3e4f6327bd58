// The golden loss trajectory on a chosen device, outside the test runner (the GPU machine has no
// vitest; bench/gpu-bundle.sh bundles this file): full and LoRA fine-tuning of the golden fixture
// against the PyTorch reference (src/trainer/golden-trajectory.json), with the tests' tolerance (GOLDEN_RELATIVE_TOLERANCE).
// Usage: tsx bench/gpu-golden.ts [auto|cpu|cuda]   (default cuda). Exit 1 when a run leaves it.
import golden from '../src/trainer/golden-trajectory.json' with { type: 'json' };
import { GOLDEN_RELATIVE_TOLERANCE, goldenData, goldenModel, goldenRunOptions, type GoldenRunName } from '../src/trainer/golden-fixture.ts';
import { trainLosses } from '../src/trainer/train-fixtures.ts';
import { chooseComputeDevice } from '../src/trainer/ggml/device.ts';
import { TRAINING_DEVICES, type TrainingDevice } from '../src/trainer/training-device.ts';

const device = (process.argv[2] ?? 'cuda') as TrainingDevice;
if (!TRAINING_DEVICES.includes(device)) throw new Error(`device must be one of ${TRAINING_DEVICES.join(', ')}`);
const chosen = chooseComputeDevice(device);
console.log(`device "${device}": ${chosen.name} (${chosen.reason})`);
const model = goldenModel();
const data = goldenData();
let failed = false;
for (const run of ['full', 'lora'] as GoldenRunName[]) {
  const reference = golden.runs[run].float64;
  const t0 = performance.now();
  const losses = trainLosses({ ...goldenRunOptions(run, model, data), device });
  const ms = performance.now() - t0;
  const worst = Math.max(...losses.map((loss, i) => Math.abs(loss - reference[i]) / reference[i]));
  const ok = losses.length === reference.length && worst <= GOLDEN_RELATIVE_TOLERANCE;
  failed ||= !ok;
  console.log(`${run} on ${device}: ${losses.length} steps in ${ms.toFixed(0)} ms, worst |trainer − PyTorch| ${worst.toExponential(2)} of the loss (tolerance ${GOLDEN_RELATIVE_TOLERANCE}) ${ok ? 'ok' : 'OUTSIDE'}`);
  console.log(`  losses ${losses.map((x) => x.toFixed(5)).join(' ')}`);
}
process.exit(failed ? 1 : 0);

#!/usr/bin/env bash
# The trainer's CUDA check, for a session that has the GPU machine (see the `device` tool's README).
# Run from the repository root, with node_modules installed (it must hold
# @node-llama-cpp/linux-x64-cuda; the GPU machine reaches no registry, so node_modules has to be
# there already). Writes what it saw under ${OUT:-bench/out/gpu-check}.
#
# Getting there is the hard part (measured 2026-11-30): the lent machine takes at most 64 MiB of
# files per call, and the CUDA package's libggml-cuda.so alone is 152 MB (124 MB xz-compressed:
# fat binaries for every GPU generation); its image lists CUDA 13's nvcc, CMake and cuBLAS but no
# Node.js (the node binary here is 99 MB). The likely way: carry node (compressed), koffi, tsx and
# the CPU package's libggml-base and one libggml-cpu variant, plus ggml's source from
# node-llama-cpp's llama/gitRelease.bundle (the same commit), and build libggml-cuda there for the
# one architecture (nvcc, -DCMAKE_CUDA_ARCHITECTURES=90), then point NODEAI_GGML_CUDA_DIR at it.
#
#   1. what the driver, the CUDA libraries and the trainer's probe see;
#   2. the device-choice tests and the golden trajectory on that machine: its CUDA cases (full and
#      LoRA fine-tuning on the GPU against the PyTorch reference) run only where a GPU is found;
#   3. bench:trainer --only smol_lora and --only qwen05_lora (NodeAI alone) with --device cuda, then
#      smol_lora on the CPU for the same machine.
set -uo pipefail
out="${OUT:-bench/out/gpu-check}"
mkdir -p "$out"
log() { echo "== $*" | tee -a "$out/summary.txt"; }

if [ ! -d node_modules/@node-llama-cpp/linux-x64-cuda ]; then
  log "node_modules/@node-llama-cpp/linux-x64-cuda is missing: install dependencies (npm ci) before this check"
  exit 2
fi
log "machine: $(uname -m), $(nproc) cores; $(date -u +%FT%TZ)"
(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi: not found") 2>&1 | tee -a "$out/summary.txt"
ldd node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda/libggml-cuda.so | grep -E 'cuda|cublas' | tee -a "$out/summary.txt"

log "trainer device probe"
cat > .gpu-check-probe.ts <<'TS'
import { chooseComputeDevice, probeCuda } from './src/trainer/ggml/device.ts';
console.log(JSON.stringify(probeCuda()));
console.log('auto ->', chooseComputeDevice('auto').name, '|', chooseComputeDevice('auto').reason);
TS
timeout 120 npx tsx .gpu-check-probe.ts 2>&1 | tee -a "$out/summary.txt"
rm -f .gpu-check-probe.ts

log "tests: device choice, graph, golden trajectory"
timeout 600 npx vitest run src/trainer/ggml/device.test.ts src/trainer/graph.test.ts src/trainer/golden-trajectory.test.ts 2>&1 | tee "$out/tests.log" | grep -E 'Test Files|Tests |FAIL|×' | tee -a "$out/summary.txt"

for run in "smol_lora cuda" "qwen05_lora cuda" "smol_lora cpu"; do
  set -- $run
  log "bench:trainer --only $1 --device $2 --runs 1 --skip-pytorch"
  timeout 900 npm run -s bench:trainer -- --only "$1" --runs 1 --device "$2" --skip-pytorch --json > "$out/bench-$1-$2.log" 2>&1
  echo "exit $?; last line: $(tail -n 1 "$out/bench-$1-$2.log")" | tee -a "$out/summary.txt"
done

#!/usr/bin/env bash
# The trainer's CUDA check on the lent GPU machine, from what bench/gpu-bundle.sh packed into .gpu/
# (run from the repository root there, with .gpu carried): unpacks node and the CPU package's ggml,
# builds libggml-cuda for this machine's GPU from the same ggml commit (nvcc, CMake), then runs
#   1. the golden loss trajectory on CUDA against the PyTorch reference (bench/gpu-golden.ts);
#   2. bench:trainer --device cuda for smol_lora and qwen05_lora, and smol_lora on the CPU for the
#      same machine (NodeAI only: PyTorch's reference runs on the CPU).
# Everything it saw goes to ${OUT:-bench/out/gpu-run}/summary.txt and the logs beside it. Where nvcc
# is missing it says so and runs the CPU parts only (how the script is checked on a machine
# without a GPU).
set -uo pipefail
gpu="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.gpu"
out="${OUT:-bench/out/gpu-run}"
work=/tmp/nodeai-gpu
mkdir -p "$out" "$work"
log() { echo "== $(date -u +%T) $*" | tee -a "$out/summary.txt"; }

[ -f "$gpu/node.xz" ] || { log ".gpu/ is missing: run bash bench/gpu-bundle.sh here first and carry .gpu"; exit 2; }
log "machine: $(uname -m), $(nproc) cores; $(date -u +%FT%TZ)"
(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader || echo "nvidia-smi: not found") 2>&1 | tee -a "$out/summary.txt"

xz -dc "$gpu/node.xz" > "$work/node" && chmod +x "$work/node"
mkdir -p "$work/cpu-bins" && xz -dc "$gpu/ggml-cpu-bins.tar.xz" | tar -C "$work/cpu-bins" -xf -
export NODEAI_GGML_DIR="$work/cpu-bins"
log "node $("$work/node" --version); ggml $(cat "$gpu/ggml-commit")"

cuda_dir=""
if command -v nvcc >/dev/null; then
  cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d '.')"
  log "building libggml-cuda for sm_${cap:-90} ($(nvcc --version | tail -n 1))"
  mkdir -p "$work/src" && xz -dc "$gpu/ggml-src.tar.xz" | tar -C "$work/src" -xf -
  # Built on its own, ggml wants the pkg-config template llama.cpp's copy does not ship.
  touch "$work/src/ggml/ggml.pc.in"
  # The driver's libcuda when the toolkit has no stub to link against.
  extra=()
  if ! find /usr/local/cuda*/ -name 'libcuda.so' 2>/dev/null | grep -q .; then
    driver="$(ldconfig -p 2>/dev/null | grep -o '/[^ ]*/libcuda\.so\.1$' | head -n 1)"
    [ -n "$driver" ] && extra+=(-DCUDA_cuda_driver_LIBRARY="$driver")
  fi
  # cuBLAS from the Python packages (nvidia-cublas) when the toolkit has none of its own.
  if ! find /usr/local/cuda*/ -name 'libcublas.so*' 2>/dev/null | grep -q .; then
    site="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)"
    blas="$(find "${site:-/nonexistent}" -name 'libcublas.so*' 2>/dev/null | head -n 1)"
    blaslt="$(find "${site:-/nonexistent}" -name 'libcublasLt.so*' 2>/dev/null | head -n 1)"
    header="$(find "${site:-/nonexistent}" -name cublas_v2.h 2>/dev/null | head -n 1)"
    if [ -n "$blas" ] && [ -n "$header" ]; then
      mkdir -p "$work/cublas" && ln -sf "$blas" "$work/cublas/libcublas.so" && [ -n "$blaslt" ] && ln -sf "$blaslt" "$work/cublas/libcublasLt.so"
      extra=(-DCUDA_cublas_LIBRARY="$work/cublas/libcublas.so" -DCMAKE_CUDA_FLAGS="-I$(dirname "$header")" -DCMAKE_CXX_FLAGS="-I$(dirname "$header")")
      [ -n "$blaslt" ] && extra+=(-DCUDA_cublasLt_LIBRARY="$work/cublas/libcublasLt.so")
      export LD_LIBRARY_PATH="$(dirname "$blas"):${LD_LIBRARY_PATH:-}"
      log "cuBLAS from $(dirname "$blas")"
    fi
  fi
  # Unversioned sonames: libggml-cuda then needs "libggml-base.so", which resolves to the one the
  # trainer already loaded from the CPU package (same commit), so the process keeps one ggml.
  # No FlashAttention kernels (the trainer does not use them; they are most of the build).
  if timeout 420 cmake -S "$work/src/ggml" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
       -DCMAKE_PLATFORM_NO_VERSIONED_SONAME=ON -DGGML_BUILD_TESTS=OFF -DGGML_BUILD_EXAMPLES=OFF -DGGML_CUDA=ON -DGGML_CUDA_FA=OFF -DGGML_NATIVE=OFF \
       -DCMAKE_CUDA_ARCHITECTURES="${cap:-90}" "${extra[@]}" > "$out/cmake.log" 2>&1 \
     && timeout 420 cmake --build "$work/build" --target ggml-cuda -j "$(nproc)" >> "$out/cmake.log" 2>&1; then
    cuda_dir="$(dirname "$(find "$work/build" -name 'libggml-cuda.so' | head -n 1)")"
    # device.ts checks the CUDA library is of the CPU one's release.
    cp "$work/cpu-bins/_nlcBuildMetadata.json" "$cuda_dir/"
    log "built $cuda_dir/libggml-cuda.so ($(du -h "$cuda_dir/libggml-cuda.so" | cut -f1)); needs: $(readelf -d "$cuda_dir/libggml-cuda.so" | grep -o 'Shared library: \[[^]]*\]' | tr '\n' ' ')"
  else
    log "libggml-cuda did not build (tail of $out/cmake.log):"; tail -n 20 "$out/cmake.log" | tee -a "$out/summary.txt"
  fi
else
  log "nvcc not found: no CUDA build; the CPU parts only"
fi
[ -n "$cuda_dir" ] && export NODEAI_GGML_CUDA_DIR="$cuda_dir"
for lib in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do [ -d "$lib" ] && export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"; done

devices=cpu
[ -n "$cuda_dir" ] && devices="cuda cpu"
for dev in $devices; do
  log "golden trajectory on $dev"
  timeout 300 "$work/node" "$gpu/gpu-golden.mjs" "$dev" 2>&1 | tee -a "$out/summary.txt"
done
runs=("smol_lora cpu")
[ -n "$cuda_dir" ] && runs=("smol_lora cuda" "qwen05_lora cuda" "smol_lora cpu")
for run in "${runs[@]}"; do
  set -- $run
  log "bench:trainer --only $1 --device $2 --runs 1 --skip-pytorch"
  timeout 600 "$work/node" "$gpu/trainer.mjs" --only "$1" --runs 1 --device "$2" --skip-pytorch --json > "$out/bench-$1-$2.log" 2>&1
  echo "exit $?; $(grep -E 'tok/s, ' "$out/bench-$1-$2.log" | head -n 1); last line: $(tail -n 1 "$out/bench-$1-$2.log")" | tee -a "$out/summary.txt"
done
log "done"

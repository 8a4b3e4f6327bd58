#!/usr/bin/env bash
# Packs what the trainer's CUDA check needs into .gpu/ (git-ignored),
# for the lent GPU machine, which takes at most 64 MiB of files per call, reaches no registry and
# has no Node.js in its image, and for which the CUDA package's libggml-cuda.so (152 MB: every GPU
# generation) is too large. So it carries: node (xz), koffi, the CPU package's ggml libraries (xz),
# ggml's source from node-llama-cpp's own llama.cpp bundle (the same commit, to build libggml-cuda
# there for its one GPU), and the check's scripts bundled to JavaScript by esbuild (no tsx, no
# node_modules). bench/gpu-run.sh unpacks and runs it there:
#
#   bash bench/gpu-bundle.sh            # here, after npm ci
#   run(command: "bash bench/gpu-run.sh", carry: [".gpu"])   # there (the device tool)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out=.gpu
rm -rf "$out" && mkdir -p "$out/node_modules"

xz -T0 -6 -c "$(command -v node)" > "$out/node.xz"
# koffi and its native build for this platform (an optional package of its own).
mkdir -p "$out/node_modules/@koromix"
cp -r node_modules/koffi "$out/node_modules/koffi"
cp -r node_modules/@koromix/koffi-linux-x64 "$out/node_modules/@koromix/"
cpu_bins="node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
tar -C "$cpu_bins" -cf - . | xz -T0 -6 > "$out/ggml-cpu-bins.tar.xz"
bundle="$(node -e 'const p=require("node:path");let d=p.dirname(require.resolve("node-llama-cpp"));while(p.basename(d)!=="node-llama-cpp")d=p.dirname(d);console.log(p.join(d,"llama","gitRelease.bundle"))')"
commit="$(git bundle list-heads "$bundle" | head -n 1 | cut -d' ' -f1)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
git clone -q --bare "$bundle" "$tmp/llama.git"
git --git-dir="$tmp/llama.git" archive --format=tar "$commit" ggml | xz -T0 -6 > "$out/ggml-src.tar.xz"
echo "$commit" > "$out/ggml-commit"

for script in gpu-golden trainer; do
  npx esbuild "bench/$script.ts" --bundle --platform=node --format=esm --target=node20 --external:koffi \
    --banner:js="import { createRequire as __nodeaiRequire } from 'node:module'; const require = __nodeaiRequire(import.meta.url);" \
    --log-level=warning --outfile="$out/$script.mjs"
done
cp bench/gpu-run.sh "$out/"
du -sh "$out"
size=$(du -sb "$out" | cut -f1)
[ "$size" -lt $((60 * 1024 * 1024)) ] || { echo "gpu-bundle: $out is $size bytes, over the 64 MiB a call can carry (with the repository's own files)" >&2; exit 1; }

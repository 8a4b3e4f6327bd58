#!/usr/bin/env bash
# Builds ggml's BLAS backend (ggml/src/ggml-blas/ggml-blas.cpp) against oneDNN or OpenBLAS, as a ggml backend
# library the trainer loads next to node-llama-cpp's prebuilt libggml-base
# (build/ggml-blas/libggml-blas.so). The source is the llama.cpp tree node-llama-cpp ships
# (node_modules/node-llama-cpp/llama/gitRelease.bundle), so the backend matches the ggml the
# trainer runs on. Needs g++ and oneDNN's library and headers (Debian: libdnnl-dev), or OpenBLAS's
# runtime library alone (Debian: libopenblas0), not its
# -dev package: the few CBLAS declarations ggml-blas.cpp uses are in build/ggml-blas/include/cblas.h,
# written here from the CBLAS interface.
#
# Idempotent: does nothing when the library exists and was built from the same source and library.
# Never fails an install: when something is missing it says what and exits 0 (the trainer then
# computes every matmul with ggml-cpu and says why in the job's events). --strict exits 1 instead.
set -euo pipefail

strict=0
[ "${1:-}" = "--strict" ] && strict=1
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/build/ggml-blas"

skip() {
  echo "ggml-blas: not built: $1" >&2
  [ "$strict" = 1 ] && exit 1
  exit 0
}

[ "$(uname -s)" = Linux ] || skip "only Linux builds are scripted (found $(uname -s))."
command -v g++ >/dev/null || skip "g++ is not installed (Debian: apt-get install g++)."
command -v git >/dev/null || skip "git is not installed (needed to read node-llama-cpp's llama.cpp bundle)."
command -v node >/dev/null || skip "node is not on PATH."

# node-llama-cpp's copy of the llama.cpp source, wherever npm put the package (hoisted or not).
bundle="$(cd "$root" && node -e '
  const path = require("node:path");
  // The package exports only its entry points: walk up from its main module to its folder.
  let dir = path.dirname(require.resolve("node-llama-cpp", { paths: [process.cwd()] }));
  while (path.basename(dir) !== "node-llama-cpp" && path.dirname(dir) !== dir) dir = path.dirname(dir);
  console.log(path.join(dir, "llama", "gitRelease.bundle"));
' 2>/dev/null || true)"
[ -n "$bundle" ] && [ -f "$bundle" ] || skip "node-llama-cpp's llama/gitRelease.bundle was not found (run npm ci first)."
# The folder holding node-llama-cpp's libggml-base, as the trainer finds it (src/trainer/ggml/lib.ts).
ggml_dir="${NODEAI_GGML_DIR:-$(cd "$root" && node -e '
  const { createRequire } = require("node:module");
  const path = require("node:path");
  const pkg = `@node-llama-cpp/${process.platform}-${process.arch}`;
  const entry = createRequire(path.join(process.cwd(), "package.json")).resolve(pkg);
  console.log(path.join(path.dirname(path.dirname(entry)), "bins", pkg.slice(pkg.indexOf("/") + 1)));
' 2>/dev/null || true)}"
[ -n "$ggml_dir" ] && [ -f "$ggml_dir/libggml-base.so" ] || skip "node-llama-cpp's libggml-base.so was not found (run npm ci first)."

# The library the products go to: oneDNN when it is installed (Debian: libdnnl-dev; faster F32
# matmuls and BF16 ones on AMX tiles, see scripts/ggml-blas/onednn-matmul.cpp), else OpenBLAS.
# NODEAI_GGML_BLAS_VENDOR=openblas|onednn picks one.
onednn=""
for candidate in /usr/lib/x86_64-linux-gnu/libdnnl.so /usr/lib/aarch64-linux-gnu/libdnnl.so /usr/lib64/libdnnl.so /usr/lib/libdnnl.so; do
  if [ -e "$candidate" ] && [ -f /usr/include/oneapi/dnnl/dnnl.hpp ]; then onednn="$(readlink -f "$candidate")"; break; fi
done
openblas=""
for candidate in /usr/lib/x86_64-linux-gnu/libopenblas.so.0 /usr/lib/aarch64-linux-gnu/libopenblas.so.0 /usr/lib64/libopenblas.so.0 /usr/lib/libopenblas.so.0; do
  if [ -e "$candidate" ]; then openblas="$candidate"; break; fi
done
vendor="${NODEAI_GGML_BLAS_VENDOR:-}"
if [ -z "$vendor" ]; then
  if [ -n "$onednn" ]; then vendor=onednn; else vendor=openblas; fi
fi
case "$vendor" in
  onednn)
    [ -n "$onednn" ] || skip "oneDNN is not installed (Debian: apt-get install libdnnl-dev)."
    backend_lib="$onednn" ;;
  openblas)
    [ -n "$openblas" ] || skip "neither oneDNN nor OpenBLAS is installed (Debian: apt-get install libdnnl-dev, or libopenblas0)."
    # The CBLAS declarations below use 32-bit integers: an OpenBLAS built with 64-bit ones (INTERFACE64)
    # names its symbols differently or takes other arguments.
    case " $(nm -D --defined-only "$openblas" 2>/dev/null | awk '{print $3}' | tr '\n' ' ') " in *" cblas_sgemm "*) ;; *) skip "$openblas has no cblas_sgemm." ;; esac
    backend_lib="$openblas" ;;
  *) skip "NODEAI_GGML_BLAS_VENDOR must be onednn or openblas (got $vendor)." ;;
esac

commit="$(git bundle list-heads "$bundle" | head -n 1 | cut -d' ' -f1)"
[ -n "$commit" ] || skip "could not read the commit of $bundle."
stamp="source $commit; wrapper $(cat "$root"/scripts/ggml-blas/* | sha256sum | cut -d' ' -f1); $vendor $(readlink -f "$backend_lib"); ggml-base $(sha256sum "$ggml_dir/libggml-base.so" | cut -d' ' -f1)"
if [ -f "$out/libggml-blas.so" ] && [ -f "$out/libggml-test-device.so" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "ggml-blas: up to date ($out/libggml-blas.so)"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q --bare "$bundle" "$work/llama.git" 2>/dev/null || skip "could not read $bundle with git."
mkdir -p "$work/src"
git --git-dir="$work/llama.git" archive "$commit" ggml/include ggml/src/ggml-blas \
  ggml/src/ggml-impl.h ggml/src/ggml-backend-impl.h ggml/src/ggml-common.h | tar -x -C "$work/src"

mkdir -p "$out/include"
cat > "$out/include/cblas.h" <<'EOF'
/* The part of the CBLAS interface ggml-blas.cpp calls, for OpenBLAS's LP64 (32-bit int) build. */
#pragma once
#ifdef __cplusplus
extern "C" {
#endif
typedef enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 } CBLAS_ORDER;
typedef enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 } CBLAS_TRANSPOSE;
void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE transA, enum CBLAS_TRANSPOSE transB,
                 int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc);
void openblas_set_num_threads(int num_threads);
#ifdef __cplusplus
}
#endif
EOF

# GGML_BACKEND_DL: the library exports ggml_backend_init, as node-llama-cpp's own backend libraries
# do. $ORIGIN-relative rpath is not used: libggml-base is already loaded by the trainer (by soname).
sources=("$work/src/ggml/src/ggml-blas/ggml-blas.cpp" "$root/scripts/ggml-blas/matmul-limits.cpp")
flags=(-DGGML_BLAS_USE_OPENBLAS)
libs=()
if [ "$vendor" = onednn ]; then
  # ggml-blas.cpp's OpenBLAS calls, renamed to oneDNN's (onednn-matmul.cpp).
  sources+=("$root/scripts/ggml-blas/onednn-matmul.cpp" "$root/scripts/ggml-blas/row-ops.cpp")
  flags+=(-fopenmp -DNODEAI_ONEDNN -Dcblas_sgemm=nodeai_onednn_sgemm -Dopenblas_set_num_threads=nodeai_onednn_set_num_threads)
  # glibc's vector math (libmvec: the 16-lane expf of row-ops.cpp).
  libs+=(-lmvec)
fi
g++ -O2 -fPIC -shared -std=c++17 -DNDEBUG \
  -DGGML_BACKEND_DL -DGGML_BACKEND_BUILD -DGGML_BACKEND_SHARED -DGGML_SHARED "${flags[@]}" \
  -I"$out/include" -I"$root/scripts/ggml-blas" -I"$work/src/ggml/include" -I"$work/src/ggml/src" \
  "${sources[@]}" -L"$ggml_dir" -lggml-base "$backend_lib" "${libs[@]}" -Wl,-rpath,"$(dirname "$backend_lib")" \
  -o "$work/libggml-blas.so" || skip "g++ failed on the ggml-blas sources (see above)."
# The trainer's tests' stand-in accelerator (scripts/ggml-blas/test-device.cpp): no BLAS, only ggml-base.
g++ -O2 -fPIC -shared -std=c++17 -DNDEBUG -DGGML_BACKEND_SHARED -DGGML_SHARED -DGGML_BACKEND_BUILD \
  -I"$work/src/ggml/include" -I"$work/src/ggml/src" "$root/scripts/ggml-blas/test-device.cpp" \
  -L"$ggml_dir" -lggml-base -o "$work/libggml-test-device.so" || skip "g++ failed on scripts/ggml-blas/test-device.cpp (see above)."
mv "$work/libggml-blas.so" "$out/libggml-blas.so"
mv "$work/libggml-test-device.so" "$out/libggml-test-device.so"
echo "$stamp" > "$out/stamp"
echo "ggml-blas: built $out/libggml-blas.so (llama.cpp $commit, $vendor: $(readlink -f "$backend_lib"))"

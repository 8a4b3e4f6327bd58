#!/usr/bin/env bash
# Builds ggml's BLAS backend (scripts/build-ggml-blas.sh) on oneDNN, installing Debian's oneDNN
# (libdnnl-dev: the library and the headers the build compiles against) first when it is missing,
# so the trainer's BLAS-backend tests run instead of skipping. Source it from .ci/run.
. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
if [ ! -f /usr/include/oneapi/dnnl/dnnl.hpp ]; then
  nodeai_apt_install libdnnl-dev || { return 1 2>/dev/null || exit 1; }
fi
bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/build-ggml-blas.sh" --strict || { return 1 2>/dev/null || exit 1; }

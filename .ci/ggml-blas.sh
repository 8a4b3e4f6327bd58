#!/usr/bin/env bash
# Builds ggml's BLAS backend (scripts/build-ggml-blas.sh), installing Debian's OpenBLAS runtime
# (libopenblas0) first when it is missing, so the trainer's OpenBLAS tests run instead of skipping.
# Source it from .ci/run.
. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
if ! compgen -G '/usr/lib/*/libopenblas.so.0' >/dev/null && ! compgen -G '/usr/lib*/libopenblas.so.0' >/dev/null; then
  nodeai_apt_install libopenblas0 || { return 1 2>/dev/null || exit 1; }
fi
bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/build-ggml-blas.sh" --strict || { return 1 2>/dev/null || exit 1; }

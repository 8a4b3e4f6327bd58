#!/usr/bin/env bash
# Installs Debian's Go (golang-go) for the Ollama TEMPLATE test, which renders Modelfile templates
# with Go's own text/template (tools/go-template) when it is missing. Source it from .ci/run.
. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
if ! command -v go >/dev/null; then
  nodeai_apt_install golang-go || { return 1 2>/dev/null || exit 1; }
fi

#!/usr/bin/env bash
# Installs Debian's Chromium for the canvas tests (playwright-core drives /usr/bin/chromium) when
# it is missing. Source it from .ci/run.
. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
if [ ! -x /usr/bin/chromium ]; then
  nodeai_apt_install chromium || { return 1 2>/dev/null || exit 1; }
fi

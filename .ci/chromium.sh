#!/usr/bin/env bash
# Installs Debian's Chromium for the canvas tests (playwright-core drives /usr/bin/chromium) when
# it is missing. Source it from .ci/run.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "chromium.sh: Chromium is not installed and installing it needs root (apt-get install chromium)." >&2
    return 1 2>/dev/null || exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # The package index may be stale in a fresh image: refresh it only if the plain install fails.
  apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } || {
    echo "chromium.sh: apt-get install chromium failed." >&2
    return 1 2>/dev/null || exit 1
  }
fi

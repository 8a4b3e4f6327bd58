#!/usr/bin/env bash
# nodeai_apt_install PACKAGE: installs a Debian package for CI, as root. The package index may be
# stale in a fresh image: it is refreshed only if the plain install fails. Returns 1 with a
# message on stderr when that is not possible.
nodeai_apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "ci: $1 is not installed and installing it needs root (apt-get install $1)." >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "$1" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "$1" >/dev/null; } || {
    echo "ci: apt-get install $1 failed." >&2
    return 1
  }
}

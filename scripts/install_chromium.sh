#!/usr/bin/env bash
# Debian's chromium for the browser tests (tests/browser), installed once and quietly.
# Nothing to do when VAE_CHROMIUM names a browser, or when /usr/bin/chromium exists
# (CHROMIUM_BIN overrides that path, for this script's own test).
# No browser download: the Debian package only (never `playwright install`).
set -euo pipefail

if [ -n "${VAE_CHROMIUM:-}" ]; then
  [ -x "$VAE_CHROMIUM" ] && exit 0
  echo "VAE_CHROMIUM=$VAE_CHROMIUM is not an executable file." >&2
  exit 1
fi
[ -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ] && exit 0
exec "$(dirname "$0")/apt_install.sh" "Debian's chromium for the browser tests" \
  "install Chromium and set VAE_CHROMIUM to its binary for the browser tests" 1 chromium

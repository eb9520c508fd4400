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
if ! command -v apt-get >/dev/null 2>&1; then
  echo "No apt-get here: install Chromium and set VAE_CHROMIUM to its binary for the browser tests." >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "Run as root (or with sudo): apt-get install -y chromium" >&2
    exit 1
  fi
  sudo=(sudo)
fi
echo "Installing Debian's chromium for the browser tests (once)..."
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -qq chromium >/dev/null 2>&1; then
  # The package lists may be missing or stale on a fresh machine.
  "${sudo[@]}" apt-get update -qq >/dev/null
  "${sudo[@]}" apt-get install -y -qq chromium >/dev/null
fi

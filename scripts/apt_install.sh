#!/usr/bin/env bash
# Installs Debian packages a test suite needs, quietly, with one `apt-get update` when the
# install fails (the package lists may be missing or stale on a fresh machine). The callers
# (install_chromium.sh, install_rtsp_server.sh) first check whether there is anything to do.
#
#   apt_install.sh WHAT OTHERWISE STATUS PACKAGE...
#
# WHAT names what is installed ("Debian's chromium for the browser tests"); without apt-get,
# or neither root nor sudo, the script says OTHERWISE (what to do, or what will skip) and
# exits with STATUS.
set -euo pipefail

what=$1 otherwise=$2 status=$3
shift 3
if ! command -v apt-get >/dev/null 2>&1; then
  echo "No apt-get here to install $*: $otherwise." >&2
  exit "$status"
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "Not root and no sudo to run apt-get install -y $*: $otherwise." >&2
    exit "$status"
  fi
  sudo=(sudo)
fi
echo "Installing $what (once)..."
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update -qq >/dev/null
  "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
fi

#!/usr/bin/env bash
# Debian's GStreamer RTSP server for the camera tests (tests/integration/test_cameras.py),
# installed once and quietly. It runs under Debian's /usr/bin/python3 (python3-gi), not the
# venv: scripts/rtsp_server.py. Nothing to do when it already imports with x264enc at hand.
set -euo pipefail

PACKAGES=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-libav)
PROBE="import gi; gi.require_version('GstRtspServer', '1.0')
from gi.repository import Gst, GstRtspServer; Gst.init(None)
assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('rtph264pay')"

[ -x /usr/bin/python3 ] && /usr/bin/python3 -c "$PROBE" >/dev/null 2>&1 && exit 0
exec "$(dirname "$0")/apt_install.sh" "Debian's GStreamer RTSP server for the camera tests" \
  "the RTSP camera tests will skip" 0 "${PACKAGES[@]}"

#!/usr/bin/python3
"""A real RTSP server (Debian's GStreamer RTSP server) serving a video file, looped, as H.264.

Run it with Debian's own python3 (python3-gi is built for it), not the venv's:

    /usr/bin/python3 scripts/rtsp_server.py ../shared/media/vtest.avi --port 8554 --path /clip

Every client shares one pipeline (one encode however many cameras read it). The clip
restarts at its end. `scripts/install_rtsp_server.sh` installs the packages it needs.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--path", default="/clip")
    parser.add_argument("--fps", type=int, default=10, help="frame rate served")
    args = parser.parse_args()
    if not args.video.is_file():
        print(f"rtsp_server: no such video file {args.video}", file=sys.stderr)
        return 2
    Gst.init(None)
    location = str(args.video.resolve()).replace('"', '\\"')
    launch = (
        f'( multifilesrc location="{location}" loop=true ! decodebin ! videoconvert ! '
        f"videorate ! video/x-raw,framerate={args.fps}/1 ! "
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 bitrate=1500 ! "
        "rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on port {args.port}", file=sys.stderr)
        return 2
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print(f"rtsp_server: serving rtsp://127.0.0.1:{args.port}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

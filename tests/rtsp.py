"""A real RTSP server for the camera tests: Debian's GStreamer RTSP server as a child process.

It runs under Debian's /usr/bin/python3 (python3-gi is built for it), started and killed by
the tests like any camera that goes away. `scripts/install_rtsp_server.sh` (run by
`make test`) installs it; where it is missing the tests skip, saying so.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from pipeline import children
from tests.processes import wait_until

REPO = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"
PROBE = (
    "import gi; gi.require_version('GstRtspServer', '1.0'); "
    "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
    "assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('rtph264pay')"
)


def rtsp_server_missing() -> str | None:
    """Why the RTSP server cannot run here, or None."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"no {SYSTEM_PYTHON} (Debian's python3 runs the GStreamer RTSP server)"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    if probe.returncode != 0:
        return (
            "Debian's GStreamer RTSP server is not installed (scripts/install_rtsp_server.sh, "
            f"run by `make test`, installs it with apt-get): {probe.stderr.strip()[-200:]}"
        )
    return None


def require_rtsp_server() -> None:
    if (reason := rtsp_server_missing()) is not None:
        pytest.skip(reason)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_rtsp_server(video: Path, port: int, log_dir: Path, name: str = "rtsp") -> children.Child:
    """Serve ``video`` at rtsp://127.0.0.1:PORT/clip; returns once the port listens."""
    child = children.spawn(
        name,
        [SYSTEM_PYTHON, str(REPO / "scripts" / "rtsp_server.py"), str(video), "--port", str(port)],
        env=None,
        log_path=log_dir / f"{name}-{port}.log",
        append=True,
    )
    if not wait_until(lambda: port_open(port) or not child.running(), 30):
        child.kill()
        raise AssertionError(f"RTSP server not listening on {port}:\n{child.tail()}")
    if not child.running():
        raise AssertionError(f"RTSP server exited:\n{child.tail()}")
    return child

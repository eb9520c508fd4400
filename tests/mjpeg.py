"""An HTTP MJPEG camera for the camera tests: multipart/x-mixed-replace JPEGs of the clip.

What IP cameras and `motion`-style servers send: one HTTP response that never ends, one
JPEG per part, at the camera's rate. It runs on a thread of the test process and can be
shut down and started again on the same port, like a camera losing power.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import simplejpeg

from tests.sample_clip import video_frames


def clip_jpegs(video: Path, count: int = 40) -> list[bytes]:
    return [
        simplejpeg.encode_jpeg(rgb, quality=70, colorspace="RGB")
        for rgb in video_frames(video, range(count))
    ]


class MjpegCamera:
    """Serves ``frames`` at ``fps`` on 127.0.0.1:``port`` to every client, looped."""

    def __init__(self, frames: list[bytes], port: int, fps: float = 10.0) -> None:
        self.frames, self.port, self.fps = frames, port, fps
        self._server: ThreadingHTTPServer | None = None
        self._stopped = threading.Event()

    def start(self) -> MjpegCamera:
        camera = self
        self._stopped.clear()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                while not camera._stopped.is_set():
                    jpeg = camera.frames[i % len(camera.frames)]
                    head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}"
                    try:
                        self.wfile.write(head.encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                    except OSError:
                        return
                    i += 1
                    time.sleep(1 / camera.fps)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Power off: every open response ends, the port closes."""
        self._stopped.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

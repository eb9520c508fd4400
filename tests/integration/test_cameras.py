"""`vae cameras` against a real RTSP server (Debian's GStreamer) and the real gateway.

Frames are counted where they land: the gateway's GET /v1/streams. The RTSP server is a
real process, killed outright and restarted like a camera losing power.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import children
from pipeline.runtime import free_port
from tests.conftest import Service, Stack, authed, start_service, ws_url
from tests.mjpeg import MjpegCamera, clip_jpegs
from tests.processes import wait_until
from tests.rtsp import require_rtsp_server, start_rtsp_server

FPS = 5


def _get(url: str) -> Any:
    with urllib.request.urlopen(authed(url), timeout=5) as r:
        return json.loads(r.read())


def _call(method: str, url: str, body: object = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=15) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def gateway_frames(gateway: Service) -> dict[str, int]:
    """Frames the gateway received, per stream."""
    return {s["stream_id"]: s["frames"] for s in _get(gateway.http + "/v1/streams")["streams"]}


def camera_status(runner: Service) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in _get(runner.http + "/v1/cameras")["cameras"]}


def write_cameras(path: Path, cameras: list[dict[str, Any]]) -> None:
    lines = ["cameras:"]
    for camera in cameras:
        lines.append(f"  - id: {camera['id']}")
        lines += [f"    {k}: {v}" for k, v in camera.items() if k != "id"]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)  # atomic: the runner never reads half a file


@pytest.fixture
def clip(media: Path) -> Path:
    require_rtsp_server()
    return media / "vtest.avi"


@pytest.fixture
def rtsp(clip: Path, stack: Stack) -> Iterator[Callable[[int], children.Child]]:
    started: list[children.Child] = []

    def start(port: int) -> children.Child:
        server = start_rtsp_server(clip, port, stack.log_dir)
        started.append(server)
        return server

    yield start
    children.stop(started, grace_s=5)


def start_cameras(stack: Stack, gateway: Service, file: Path) -> Service:
    port = free_port()
    runner = start_service(
        stack,
        f"cameras-{port}",
        ["cameras", "--cameras", str(file), "--port", str(port), "--reload", "0.5"],
        stack.with_env(VAE_GATEWAY_URL=ws_url(gateway)),
        f"http://127.0.0.1:{port}",
    )
    runner.wait_http("/healthz")
    return runner


def wait_frames(
    gateway: Service, stream: str, at_least: int, timeout: float, runner: Service
) -> None:
    if not wait_until(lambda: gateway_frames(gateway).get(stream, 0) >= at_least, timeout, 0.2):
        raise AssertionError(
            f"{stream}: {gateway_frames(gateway).get(stream, 0)} frames at the gateway, "
            f"wanted {at_least}; status {camera_status(runner).get(stream)}\n{runner.log()}"
        )


def test_camera_reconnects_after_rtsp_server_restart(
    stack: Stack, start_gateway: Callable[..., Service], rtsp: Callable[[int], children.Child]
) -> None:
    gateway = start_gateway()
    port = free_port()
    server = rtsp(port)
    file = stack.log_dir / "cameras.yaml"
    url = f"rtsp://127.0.0.1:{port}/clip"
    write_cameras(file, [{"id": "door", "url": url, "fps": FPS, "max_width": 640}])
    runner = start_cameras(stack, gateway, file)
    wait_frames(gateway, "door", 10, 60, runner)
    assert camera_status(runner)["door"]["state"] == "streaming"

    server.kill()  # the camera loses power mid-stream
    assert wait_until(lambda: camera_status(runner)["door"]["reconnects"] >= 1, 30, 0.2), (
        camera_status(runner)["door"]
    )
    assert camera_status(runner)["door"]["state"] in ("connecting", "backing_off")
    before = gateway_frames(gateway)["door"]

    rtsp(port)  # back on the same address: the runner finds it by itself
    wait_frames(gateway, "door", before + 10, 90, runner)
    status = camera_status(runner)["door"]
    assert status["state"] == "streaming" and status["reconnects"] >= 1, status
    assert status["last_frame_age_s"] < 5, status
    streams = _get(gateway.http + "/v1/streams")
    door = next(s for s in streams["streams"] if s["stream_id"] == "door")
    # The envelope's capture time: the stream's clock anchored on the wall clock.
    assert abs(streams["now_us"] - door["frame_ts_us"]) < 3_000_000, door
    with urllib.request.urlopen(runner.http + "/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert 'vae_camera_state{camera="door",state="streaming"} 1.0' in metrics
    reconnects = next(
        line
        for line in metrics.splitlines()
        if line.startswith('vae_camera_reconnects_total{camera="door"}')
    )
    assert float(reconnects.split()[-1]) >= 1


def test_unreachable_camera_leaves_the_good_ones_alone(
    stack: Stack,
    start_gateway: Callable[..., Service],
    rtsp: Callable[[int], children.Child],
    clip: Path,
) -> None:
    gateway = start_gateway()
    port = free_port()
    rtsp(port)
    # A camera that never answers: the TCP handshake completes (the kernel's backlog) but
    # nothing ever replies, so only the runner's timeouts get it out.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    url = f"rtsp://127.0.0.1:{port}/clip"
    file = stack.log_dir / "cameras.yaml"
    cameras = [
        {"id": "good-1", "url": url, "fps": FPS, "max_width": 640},
        {"id": "good-2", "url": url, "fps": FPS, "max_width": 640},
        {"id": "silent", "url": f"rtsp://127.0.0.1:{silent.getsockname()[1]}/x", "fps": FPS},
    ]
    write_cameras(file, cameras)
    try:
        runner = start_cameras(stack, gateway, file)
        for good in ("good-1", "good-2"):
            wait_frames(gateway, good, 5, 60, runner)

        # The good cameras keep their rate while the silent one times out and retries.
        start, t0 = gateway_frames(gateway), time.monotonic()
        assert wait_until(lambda: camera_status(runner)["silent"]["reconnects"] >= 1, 30, 0.2)
        time.sleep(max(0.0, 8 - (time.monotonic() - t0)))  # measure at least 8 s
        end, elapsed = gateway_frames(gateway), time.monotonic() - t0
        for good in ("good-1", "good-2"):
            rate = (end[good] - start[good]) / elapsed
            assert rate >= 0.75 * FPS, f"{good}: {rate:.1f} fps beside a silent camera"
        silent_status = camera_status(runner)["silent"]
        assert silent_status["state"] in ("connecting", "backing_off"), silent_status
        assert silent_status["frames_sent"] == 0 and "silent" not in end
        reconnects_1 = camera_status(runner)["good-1"]["reconnects"]

        # At runtime, through the API: remove the silent one, add a looped file.
        status, body = _call("DELETE", runner.http + "/v1/cameras/silent")
        assert status == 200, body
        status, body = _call("PUT", runner.http + "/v1/cameras/file", {"url": str(clip), "fps": 2})
        assert status == 201, body
        status, body = _call("PUT", runner.http + "/v1/cameras/bad", {"url": "x", "fps": 0})
        assert status == 400 and "camera 'bad': key 'fps'" in body["message"], body
        status, body = _call("PUT", runner.http + "/v1/cameras/off", {"url": url, "enabled": False})
        assert status == 201 and body["state"] == "disabled", body
        wait_frames(gateway, "file", 3, 30, runner)
        assert set(camera_status(runner)) == {"good-1", "good-2", "file", "off"}
        assert "off" not in gateway_frames(gateway)

        # And through the file: it sets the cameras back to its own (the API's are gone, and
        # good-2 with them); good-1 is left alone.
        write_cameras(file, cameras[:1])
        assert wait_until(lambda: set(camera_status(runner)) == {"good-1"}, 15, 0.2)
        before = gateway_frames(gateway)["good-1"]
        wait_frames(gateway, "good-1", before + 5, 15, runner)
        assert camera_status(runner)["good-1"]["reconnects"] == reconnects_1

        # A file that no longer parses is refused, and the cameras go on as they were.
        file.write_text("cameras:\n  - {id: good-1, url: rtsp://x, quality: 0}\n")
        assert wait_until(lambda: "keeping the cameras as they are" in runner.log(200), 15, 0.2)
        assert "key 'quality'" in runner.log(200)
        assert set(camera_status(runner)) == {"good-1"}
        assert camera_status(runner)["good-1"]["state"] == "streaming"
    finally:
        silent.close()


def _up(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "VAE_GATEWAY_PORT": str(free_port()),
        "VAE_BROKER_PORT": str(free_port()),
        "VAE_WORKER_METRICS_PORT": str(free_port()),
        # The embedded broker completes a group join only after the rebalance timeout.
        "VAE_WORKER_MAX_POLL_INTERVAL_MS": "6000",
        "VAE_WORKER_SESSION_TIMEOUT_MS": "6000",
    }
    env.pop("VAE_KAFKA_BOOTSTRAP", None)
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "up", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_vae_up_takes_a_cameras_file_in_place_of_the_replay(media: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  - {id: lobby, url: x, fps: -1}\n")
    refused = _up(["--cameras", str(bad), "--log-dir", str(tmp_path / "bad")], 60)
    assert refused.returncode == 2 and "camera 'lobby': key 'fps'" in refused.stderr
    assert "broker:" not in refused.stdout  # refused before anything started

    file = tmp_path / "cameras.yaml"
    write_cameras(file, [{"id": "lobby", "url": media / "vtest.avi", "fps": 4, "max_width": 640}])
    args = ["--cameras", str(file), "--duration", "20", "--log-dir", str(tmp_path / "up")]
    result = _up(args, 150)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"1 camera(s) from {file}" in output
    final = re.search(r"final: (\d+) detections received", output)
    assert final is not None and int(final.group(1)) > 0, output


def test_http_mjpeg_camera_streams_and_comes_back(
    stack: Stack, start_gateway: Callable[..., Service], media: Path
) -> None:
    gateway = start_gateway()
    port = free_port()
    mjpeg = MjpegCamera(clip_jpegs(media / "vtest.avi"), port).start()
    try:
        file = stack.log_dir / "cameras.yaml"
        url = f"http://127.0.0.1:{port}/video.mjpg"
        write_cameras(file, [{"id": "ipcam", "url": url, "fps": FPS, "max_width": 384}])
        runner = start_cameras(stack, gateway, file)
        wait_frames(gateway, "ipcam", 10, 60, runner)
        streams = _get(gateway.http + "/v1/streams")
        ipcam = next(s for s in streams["streams"] if s["stream_id"] == "ipcam")
        assert ipcam["width"] == 384, ipcam  # re-encoded down to max_width
        assert abs(streams["now_us"] - ipcam["frame_ts_us"]) < 3_000_000, ipcam  # receive time

        mjpeg.stop()
        assert wait_until(lambda: camera_status(runner)["ipcam"]["reconnects"] >= 1, 30, 0.2)
        before = gateway_frames(gateway)["ipcam"]
        mjpeg.start()
        wait_frames(gateway, "ipcam", before + 10, 60, runner)
        assert camera_status(runner)["ipcam"]["state"] == "streaming"
    finally:
        mjpeg.stop()

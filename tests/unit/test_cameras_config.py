"""The cameras file: what it accepts, and errors that name the camera and the key."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from connectors.cameras.camera import backoff_delay
from connectors.cameras.config import CameraConfig, CameraConfigError, parse_cameras
from connectors.cameras.decode import CaptureClock

GOOD = """
cameras:
  - id: door
    url: rtsp://10.0.0.5:554/main
  - id: yard
    url: http://10.0.0.6/mjpeg
    fps: 2
    max_width: 1280
    quality: 70
    enabled: false
  - {id: desk, url: /dev/video0}
  - {id: clip, url: ../shared/media/vtest.avi}
"""


def test_a_good_file_with_defaults() -> None:
    cameras = parse_cameras(GOOD)
    assert list(cameras) == ["door", "yard", "desk", "clip"]
    assert cameras["door"] == CameraConfig("door", "rtsp://10.0.0.5:554/main", 5.0, 0, 80, True)
    assert cameras["yard"].fps == 2 and not cameras["yard"].enabled
    kinds = [c.kind for c in cameras.values()]
    assert kinds == ["rtsp", "http", "v4l2", "file"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cameras: 3", "top-level 'cameras:' list"),
        ("cameras: [", "not valid YAML"),
        ("cameras:\n  - url: rtsp://x\n", "camera 1: key 'id'"),
        ("cameras:\n  - {id: 'a b', url: rtsp://x}\n", "camera 1: key 'id'"),
        ("cameras:\n  - {id: a}\n", "camera 'a': key 'url' is required"),
        ("cameras:\n  - {id: a, url: 'ftp://x'}\n", "camera 'a': key 'url' has an unsupported"),
        ("cameras:\n  - {id: a, url: x, fps: 0}\n", "camera 'a': key 'fps'"),
        ("cameras:\n  - {id: a, url: x, fps: fast}\n", "camera 'a': key 'fps' must be a number"),
        ("cameras:\n  - {id: a, url: x, max_width: 641}\n", "camera 'a': key 'max_width'"),
        ("cameras:\n  - {id: a, url: x, quality: 101}\n", "camera 'a': key 'quality'"),
        ("cameras:\n  - {id: a, url: x, enabled: 'no'}\n", "camera 'a': key 'enabled'"),
        ("cameras:\n  - {id: a, url: x, fsp: 5}\n", "camera 'a': unknown key 'fsp'"),
        ("cameras:\n  - {id: a, url: x}\n  - {id: a, url: y}\n", "key 'id' appears twice"),
    ],
)
def test_errors_name_camera_and_key(text: str, message: str) -> None:
    with pytest.raises(CameraConfigError, match=r"^cameras\.yaml: ") as info:
        parse_cameras(text, "cameras.yaml")
    assert message in str(info.value)


def test_backoff_is_jittered_exponential_and_capped() -> None:
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (10, 30.0), (500, 30.0)]:
        delays = {backoff_delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered: cameras that fail together do not retry together


def test_capture_time_follows_the_stream_clock() -> None:
    clock = CaptureClock()
    now_us = time.time() * 1e6
    first = clock.capture_us(10.0)
    assert abs(first - now_us) < 1e6
    assert clock.capture_us(10.5) - first == pytest.approx(500_000, abs=2)
    assert abs(clock.capture_us(None) - time.time() * 1e6) < 1e6  # no timestamp: now
    assert abs(clock.capture_us(9999.0) - time.time() * 1e6) < 1e6  # a jump: re-anchored


def test_vae_cameras_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "cameras.yaml"
    bad.write_text("cameras:\n  - {id: door, url: rtsp://x, quality: 0}\n")
    for args, message in [
        ([], "VAE_CAMERAS"),
        (["--cameras", str(bad)], f"cameras file {bad}: camera 'door': key 'quality'"),
        (["--cameras", str(tmp_path / "none.yaml")], "No such file"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "pipeline", "cameras", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin"},
        )
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr

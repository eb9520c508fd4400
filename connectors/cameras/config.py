"""The cameras file (YAML): what each camera is and how it is sent, checked with clear errors.

The format (documented in README)::

    cameras:
      - id: front-door                  # the stream id at the gateway
        url: rtsp://10.0.0.5:554/main   # rtsp://, http(s):// MJPEG, a video file, /dev/videoN
        fps: 5                          # frames per second sent (decimation); default 5
        max_width: 1280                 # re-encode wider frames down to this (0: keep)
        quality: 80                     # JPEG quality 1-100
        enabled: true
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

STREAM_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
KEYS = ("id", "url", "fps", "max_width", "quality", "enabled")


class CameraConfigError(ValueError):
    """A cameras file (or API body) that cannot be used; the message names camera and key."""


@dataclass(frozen=True, slots=True)
class CameraConfig:
    """One camera, as the file declares it."""

    id: str
    url: str
    fps: float = 5.0
    max_width: int = 0
    quality: int = 80
    enabled: bool = True

    @property
    def kind(self) -> str:
        """rtsp, http, v4l2 or file: how the URL is opened."""
        if self.url.startswith(("rtsp://", "rtsps://")):
            return "rtsp"
        if self.url.startswith(("http://", "https://")):
            return "http"
        if self.url.startswith("/dev/video"):
            return "v4l2"
        return "file"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_camera(raw: object, origin: str = "", index: int | None = None) -> CameraConfig:
    """One camera's mapping; errors name the origin, then the camera by id (by index before)."""
    prefix = f"{origin}: " if origin else ""
    where = f"{prefix}camera {index}" if index is not None else f"{prefix}camera"
    if not isinstance(raw, dict):
        raise CameraConfigError(f"{where}: expected a mapping of {', '.join(KEYS)}")
    cam_id = raw.get("id")
    if not isinstance(cam_id, str) or not STREAM_ID.match(cam_id):
        raise CameraConfigError(
            f"{where}: key 'id' must be 1-128 characters of A-Z a-z 0-9 . _ - (got {cam_id!r})"
        )
    where = f"{prefix}camera {cam_id!r}"
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise CameraConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
    url = raw.get("url")
    if not isinstance(url, str) or not url:
        raise CameraConfigError(f"{where}: key 'url' is required (rtsp://, http(s)://, a file)")
    if "://" in url and not url.startswith(("rtsp://", "rtsps://", "http://", "https://")):
        raise CameraConfigError(
            f"{where}: key 'url' has an unsupported scheme {url.split('://')[0]!r} "
            "(rtsp, rtsps, http, https, a file path or /dev/videoN)"
        )
    fps = _number(raw, "fps", 5.0, where)
    if not 0 < fps <= 120:
        raise CameraConfigError(f"{where}: key 'fps' must be above 0 and at most 120 (got {fps})")
    max_width = _integer(raw, "max_width", 0, where)
    if max_width < 0 or max_width % 2:
        raise CameraConfigError(
            f"{where}: key 'max_width' must be 0 (keep) or an even width (got {max_width})"
        )
    quality = _integer(raw, "quality", 80, where)
    if not 1 <= quality <= 100:
        raise CameraConfigError(f"{where}: key 'quality' must be 1-100 (got {quality})")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise CameraConfigError(f"{where}: key 'enabled' must be true or false (got {enabled!r})")
    return CameraConfig(cam_id, url, fps, max_width, quality, enabled)


def _number(raw: dict[str, Any], key: str, default: float, where: str) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CameraConfigError(f"{where}: key {key!r} must be a number (got {value!r})")
    return float(value)


def _integer(raw: dict[str, Any], key: str, default: int, where: str) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CameraConfigError(f"{where}: key {key!r} must be an integer (got {value!r})")
    return value


def parse_cameras(text: str, origin: str = "cameras file") -> dict[str, CameraConfig]:
    """Every camera of a cameras file's text, by id, in file order."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CameraConfigError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("cameras"), list):
        raise CameraConfigError(f"{origin}: expected a top-level 'cameras:' list")
    cameras: dict[str, CameraConfig] = {}
    for index, raw in enumerate(doc["cameras"], start=1):
        camera = parse_camera(raw, origin, index)
        if camera.id in cameras:
            raise CameraConfigError(f"{origin}: camera {camera.id!r}: key 'id' appears twice")
        cameras[camera.id] = camera
    return cameras


def load_cameras(path: Path) -> dict[str, CameraConfig]:
    """Read and check a cameras file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CameraConfigError(f"cameras file {path}: {exc.strerror or exc}") from exc
    return parse_cameras(text, f"cameras file {path}")

"""A clip the analytics tests make from real pixels: the dog of dog.jpg walking over a
plain floor, across a vertical line and into and out of a zone, a known number of times."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

W, H = 640, 360
DOG_BOX = (460, 72, 698, 178)  # the car in dog.jpg (tests/reference.py), with a margin
SCALE = 1.0
FPS = 10
FLOOR = (128, 128, 120)

# One vertical line at the middle; a zone over the right quarter.
RULES_YAML = """
streams:
  "clip-*":
    anchor: bottom_center
    track_lost_s: 1.0
    lines:
      - name: middle
        points: [[0.5, 0.0], [0.5, 1.0]]
        classes: [car]
    zones:
      - name: right
        polygon: [[0.75, 0.0], [1.0, 0.0], [1.0, 1.0], [0.75, 1.0]]
        classes: [car]
"""


@dataclass(frozen=True)
class Clip:
    frames: list[bytes]
    capture_ts_us: list[int]
    crossed_in: int  # left to right over the line
    crossed_out: int
    zone_entries: int


def _path(legs: list[tuple[float, float]], steps: int) -> list[float]:
    """Anchor x (fraction) per frame along legs [(from, to), ...]."""
    xs: list[float] = []
    for a, b in legs:
        xs.extend(a + (b - a) * i / steps for i in range(steps))
    return xs


def make_clip(dog_jpg: bytes, start_us: int = 1_000_000_000) -> Clip:
    """Left → right (into the zone), back left, then right again (into the zone): 2 in,
    1 out, 2 zone entries (and 1 exit while seen; the second ends the clip inside)."""
    photo = Image.open(io.BytesIO(dog_jpg)).convert("RGB")
    dog = photo.crop(DOG_BOX)
    dog = dog.resize((int(dog.width * SCALE), int(dog.height * SCALE)))
    xs = _path([(0.15, 0.9), (0.9, 0.15), (0.15, 0.9)], steps=30) + [0.9] * 5
    frames = []
    for x in xs:
        canvas = Image.new("RGB", (W, H), FLOOR)
        left = int(x * W - dog.width / 2)
        canvas.paste(dog, (left, H - 20 - dog.height))
        out = io.BytesIO()
        canvas.save(out, format="JPEG", quality=90)
        frames.append(out.getvalue())
    ts = [start_us + i * 1_000_000 // FPS for i in range(len(frames))]
    return Clip(frames, ts, crossed_in=2, crossed_out=1, zone_entries=2)


def blank_jpeg() -> bytes:
    """The clip's floor with nothing on it."""
    out = io.BytesIO()
    Image.new("RGB", (W, H), FLOOR).save(out, format="JPEG")
    return out.getvalue()


def with_blank_end(clip: Clip, after_us: int) -> tuple[list[bytes], list[int]]:
    """The clip's frames and capture times, then an empty frame ``after_us`` later in the
    clip's time: its track is lost and every window closes."""
    return [*clip.frames, blank_jpeg()], [*clip.capture_ts_us, clip.capture_ts_us[-1] + after_us]


def rules_file(folder: Path) -> Path:
    """RULES_YAML written to ``folder``/rules.yaml (for VAE_ANALYTICS_RULES)."""
    path = folder / "rules.yaml"
    path.write_text(RULES_YAML)
    return path

"""An event's snapshot and clip made from real frames (the analytics clip's, from dog.jpg):
the box drawn where it is and nowhere else, the crop, the H.264 clip and its times."""

from __future__ import annotations

import io
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from pipeline.gateway.event_index import EventRef
from pipeline.gateway.recording import clip_window
from pipeline.media.clip import encode_mp4, h264_encoder, output_size
from pipeline.media.snapshot import crop_region, line_width, render_snapshot
from tests.analytics_clip import Clip, H, W, make_clip

BOX = (137.0, 234.0, 375.0, 340.0)  # about where the car is in the clip's frame 10


@pytest.fixture(scope="module")
def clip(media: Path) -> Clip:
    return make_clip((media / "dog.jpg").read_bytes())


def pixels(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(np.int16)


def test_the_bare_snapshot_is_the_stored_frame_itself(clip: Clip) -> None:
    assert render_snapshot(clip.frames[10], BOX, "car 0.91", boxes=False) is clip.frames[10]


def test_the_box_is_drawn_on_the_frame_and_nothing_else_changes(clip: Clip) -> None:
    frame = clip.frames[10]
    drawn = render_snapshot(frame, BOX, "car 0.91")
    before, after = pixels(frame), pixels(drawn)
    assert after.shape == before.shape == (H, W, 3)
    diff = np.abs(after - before).max(axis=2)
    x1, y1, x2, y2 = (round(v) for v in BOX)
    # Along each side of the box the outline replaced the picture.
    assert diff[y1 + 20 : y2 - 20, x1].min() > 40 and diff[y1 + 20 : y2 - 20, x2].min() > 40
    assert diff[y2, x1 + 40 : x2 - 40].min() > 40
    # Away from the box and its label (above it) only the JPEG round trip shows.
    away = np.ones((H, W), bool)
    away[max(0, y1 - 40) : y2 + 8, max(0, x1 - 8) : x2 + 8] = False
    assert diff[away].max() <= 24 and diff[away].mean() < 1.5


def test_the_crop_is_the_box_with_its_margin(clip: Clip) -> None:
    left, top, right, bottom = crop_region(BOX, W, H)
    assert (left, top) == (113, 223)  # 10% of the box: 23.8 px of its 238, 10.6 of its 106
    assert (right, bottom) == (399, 351)
    bare = render_snapshot(clip.frames[10], BOX, "", boxes=False, crop=True)
    assert Image.open(io.BytesIO(bare)).size == (right - left, bottom - top)
    region = pixels(clip.frames[10])[top:bottom, left:right]
    assert np.abs(pixels(bare) - region).mean() < 1.5
    boxed = render_snapshot(clip.frames[10], BOX, "car 0.91", crop=True)
    assert Image.open(io.BytesIO(boxed)).size == (right - left, bottom - top)


def test_crops_stay_inside_the_frame() -> None:
    assert crop_region((-5.0, -5.0, 20.0, 10.0), 640, 360) == (0, 0, 24, 14)
    assert crop_region((630.0, 350.0, 660.0, 370.0), 640, 360) == (626, 346, 640, 360)
    assert crop_region((700.0, 400.0, 710.0, 410.0), 640, 360) == (639, 359, 640, 360)
    assert line_width(640, 360) == 2 and line_width(1920, 1080) == 6


def test_clip_sizes_are_even_and_at_most_the_width() -> None:
    assert output_size(640, 360, 1280) == (640, 360)
    assert output_size(1920, 1080, 1280) == (1280, 720)
    assert output_size(641, 361, 0) == (640, 360)
    assert output_size(3000, 1001, 1000) == (1000, 334)


def test_a_clip_is_h264_in_mp4_with_each_frame_at_its_capture_time(clip: Clip) -> None:
    assert h264_encoder() in ("libx264", "libopenh264")
    # Times as a camera sends them: uneven, one repeated (left out), and one going back.
    ts = [clip.capture_ts_us[i] for i in range(12)]
    ts[5] += 37_000
    ts[7] = ts[6]
    ts[9] = ts[8] - 1
    made = encode_mp4(zip(ts, clip.frames[:12], strict=True), max_width=320, deadline=1e18)
    assert (made.frames, made.first_us, made.last_us) == (10, ts[0], ts[11])
    assert (made.width, made.height) == (320, 180)
    moov, mdat = made.data.find(b"moov"), made.data.find(b"mdat")
    assert 0 < moov < mdat  # +faststart: the index first
    with av.open(io.BytesIO(made.data)) as container:
        assert container.format.name.startswith("mov,mp4")
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        decoded = list(container.decode(stream))
    kept = [t for i, t in enumerate(ts) if i not in (7, 9)]
    times = [round(float(f.pts * f.time_base) * 1e6) for f in decoded]
    assert times == pytest.approx([t - ts[0] for t in kept], abs=12)  # 1/90000 s ticks
    assert decoded[0].width == 320


def test_a_clip_past_its_deadline_stops(clip: Clip) -> None:
    with pytest.raises(TimeoutError):
        encode_mp4(
            zip(clip.capture_ts_us, clip.frames, strict=True),
            max_width=0,
            deadline=time.monotonic() - 1,
        )


def ref(start_us: int, end_us: int) -> EventRef:
    return EventRef("e", "cam-1", 1, 0, 0, start_us, end_us, (0, 0, 1, 1), "car", 0.9)


def test_the_clip_spans_before_the_start_to_after_the_end_cut_around_the_best_frame() -> None:
    s = 1_000_000
    assert clip_window(ref(10 * s, 12 * s), 11 * s, 5, 5, 30) == (5 * s, 17 * s)
    # A long event: the 30 s around its best frame...
    assert clip_window(ref(10 * s, 100 * s), 50 * s, 5, 5, 30) == (35 * s, 65 * s)
    # ... kept inside the event's own span.
    assert clip_window(ref(10 * s, 100 * s), 12 * s, 5, 5, 30) == (5 * s, 35 * s)
    assert clip_window(ref(10 * s, 100 * s), 99 * s, 5, 5, 30) == (75 * s, 105 * s)

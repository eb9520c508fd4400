"""An event's snapshot: its best frame with the box and label drawn, or the box cropped."""

from __future__ import annotations

import io
import math

import numpy as np
import simplejpeg
from PIL import Image, ImageDraw, ImageFont

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in the frame's pixels

BOX_RGB = (255, 196, 0)  # amber: stands out on most scenes
TEXT_RGB = (0, 0, 0)
QUALITY = 92
CROP_MARGIN = 0.1  # of the box's width and height, on each side
CROP_MARGIN_MIN_PX = 4


def crop_region(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """The box grown by CROP_MARGIN of its size on each side (at least CROP_MARGIN_MIN_PX),
    in whole pixels, within the frame: (left, top, right, bottom), right and bottom excluded."""
    x1, y1, x2, y2 = box
    mx = max(CROP_MARGIN_MIN_PX, CROP_MARGIN * (x2 - x1))
    my = max(CROP_MARGIN_MIN_PX, CROP_MARGIN * (y2 - y1))
    left = min(max(0, math.floor(x1 - mx)), width - 1)
    top = min(max(0, math.floor(y1 - my)), height - 1)
    right = max(min(width, math.ceil(x2 + mx)), left + 1)
    bottom = max(min(height, math.ceil(y2 + my)), top + 1)
    return left, top, right, bottom


def line_width(width: int, height: int) -> int:
    return max(2, round(min(width, height) / 180))


def _draw(image: Image.Image, box: Box, caption: str) -> None:
    draw = ImageDraw.Draw(image)
    w, h = image.size
    # Whole pixels, within the frame; the outline grows inward from them.
    x1, y1, x2, y2 = (
        min(max(round(v), 0), lim - 1) for v, lim in zip(box, (w, h, w, h), strict=True)
    )
    draw.rectangle((x1, y1, x2, y2), outline=BOX_RGB, width=line_width(w, h))
    if not caption:
        return
    font = ImageFont.load_default(size=max(12, round(h / 28)))
    left, top, right, bottom = draw.textbbox((0, 0), caption, font=font)
    tw, th = right - left + 6, bottom - top + 4
    ty = y1 - th if y1 - th >= 0 else y1  # above the box, else just inside its top
    tx = min(x1, max(0.0, w - tw))
    draw.rectangle((tx, ty, tx + tw, ty + th), fill=BOX_RGB)
    draw.text((tx + 3 - left, ty + 2 - top), caption, fill=TEXT_RGB, font=font)


def render_snapshot(
    jpeg: bytes, box: Box, caption: str, *, boxes: bool = True, crop: bool = False
) -> bytes:
    """The frame as JPEG: with ``boxes`` the box and ``caption`` drawn; with ``crop`` only
    the box and its margin. Neither: the stored JPEG itself, byte for byte."""
    if not boxes and not crop:
        return jpeg
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    if boxes:
        _draw(image, box, caption)
    if crop:
        image = image.crop(crop_region(box, *image.size))
    pixels = np.ascontiguousarray(np.asarray(image))
    return bytes(simplejpeg.encode_jpeg(pixels, quality=QUALITY, colorspace="RGB"))

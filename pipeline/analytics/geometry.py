"""Points, lines and polygons in frame fractions (x right, y down, both 0..1)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pipeline.protocol.rules import Point


def anchor_point(
    box: tuple[float, float, float, float], anchor: str, width: int, height: int
) -> Point:
    """The point of a pixel box (x1, y1, x2, y2) that rules test, as frame fractions."""
    x1, y1, x2, y2 = box
    vertical, _, horizontal = anchor.partition("_")
    if anchor == "center":
        vertical, horizontal = "center", "center"
    x = {"left": x1, "center": (x1 + x2) / 2, "right": x2}[horizontal]
    y = {"top": y1, "center": (y1 + y2) / 2, "bottom": y2}[vertical]
    return x / max(width, 1), y / max(height, 1)


def line_side(
    a: Point, b: Point, p: Point, margin: float = 0.0, size: tuple[int, int] = (1, 1)
) -> int:
    """+1 where cross(B−A, p−A) > 0, −1 where < 0, 0 on the line or beside the segment.

    A point whose projection falls outside the segment A..B has no side: an object walking
    around the end of a short line crosses nothing. A point nearer the line than ``margin``
    (a fraction of the frame's width; distances in pixels of a frame of ``size``, so both
    axes count alike) has no side either: a box standing on the line jitters across it
    from one inference to the next, which is no evidence of a crossing.
    """
    w, h = size
    dx, dy = (b[0] - a[0]) * w, (b[1] - a[1]) * h
    px, py = (p[0] - a[0]) * w, (p[1] - a[1]) * h
    length2 = dx * dx + dy * dy
    if length2 == 0.0:
        return 0
    t = (px * dx + py * dy) / length2
    if t < 0.0 or t > 1.0:
        return 0
    cross = dx * py - dy * px
    if abs(cross) <= margin * w * math.sqrt(length2):  # distance to the line <= margin
        return 0
    return 1 if cross > 0.0 else -1


def direction(from_side: int, to_side: int) -> str:
    """`in` is from the positive side to the negative one (left to right for a line drawn
    top to bottom, since y grows downward); `out` is the reverse."""
    return "in" if from_side > 0 > to_side else "out"


def in_polygon(p: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd ray casting; a point on an edge may fall either way."""
    x, y = p
    inside = False
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if (y1 > y) != (y2 > y):
            x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < x_at:
                inside = not inside
    return inside


def zone_side(
    p: Point, polygon: Sequence[Point], margin: float = 0.0, size: tuple[int, int] = (1, 1)
) -> int:
    """+1 inside the polygon, −1 outside, 0 nearer an edge than ``margin``.

    ``margin`` is a fraction of the frame's width, distances in pixels of a frame of
    ``size``. Someone standing on a zone's edge is inferred a few pixels in, then out, then
    in again; with a margin those sightings are no evidence either way, so they neither
    enter the zone nor leave it.
    """
    inside = in_polygon(p, polygon)
    if margin <= 0.0:
        return 1 if inside else -1
    w, h = size
    x, y = p[0] * w, p[1] * h
    limit2 = (margin * w) ** 2
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i][0] * w, polygon[i][1] * h
        x2, y2 = polygon[(i + 1) % n][0] * w, polygon[(i + 1) % n][1] * h
        if _distance2_to_segment(x, y, x1, y1, x2, y2) <= limit2:
            return 0
    return 1 if inside else -1


def _distance2_to_segment(x: float, y: float, x1: float, y1: float, x2: float, y2: float) -> float:
    dx, dy = x2 - x1, y2 - y1
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0.0 else min(1.0, max(0.0, ((x - x1) * dx + (y - y1) * dy) / length2))
    ex, ey = x1 + t * dx - x, y1 + t * dy - y
    return ex * ex + ey * ey

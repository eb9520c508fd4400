"""Points, lines and polygons in frame fractions (x right, y down, both 0..1)."""

from __future__ import annotations

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


def line_side(a: Point, b: Point, p: Point) -> int:
    """+1 where cross(B−A, p−A) > 0, −1 where < 0, 0 on the line or beside the segment.

    A point whose projection falls outside the segment A..B has no side: an object walking
    around the end of a short line crosses nothing.
    """
    dx, dy = b[0] - a[0], b[1] - a[1]
    px, py = p[0] - a[0], p[1] - a[1]
    length2 = dx * dx + dy * dy
    if length2 == 0.0:
        return 0
    t = (px * dx + py * dy) / length2
    if t < 0.0 or t > 1.0:
        return 0
    cross = dx * py - dy * px
    if cross > 0.0:
        return 1
    if cross < 0.0:
        return -1
    return 0


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

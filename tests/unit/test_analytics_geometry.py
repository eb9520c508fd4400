"""Anchors, the in/out convention of lines, and point in polygon."""

from __future__ import annotations

import pytest

from pipeline.analytics.geometry import (
    anchor_point,
    direction,
    in_polygon,
    line_side,
    zone_side,
)

DOWN = ((0.5, 0.0), (0.5, 1.0))  # a line drawn top to bottom


def test_anchors_in_frame_fractions() -> None:
    box = (100.0, 50.0, 200.0, 150.0)
    assert anchor_point(box, "bottom_center", 400, 200) == (0.375, 0.75)
    assert anchor_point(box, "center", 400, 200) == (0.375, 0.5)
    assert anchor_point(box, "top_left", 400, 200) == (0.25, 0.25)
    assert anchor_point(box, "center_right", 400, 200) == (0.5, 0.5)


def test_left_of_a_downward_line_is_positive_so_in_is_left_to_right() -> None:
    a, b = DOWN
    left, right = line_side(a, b, (0.2, 0.5)), line_side(a, b, (0.8, 0.5))
    assert (left, right) == (1, -1)
    assert direction(left, right) == "in"
    assert direction(right, left) == "out"


def test_a_horizontal_line_drawn_left_to_right_has_in_going_up() -> None:
    # cross((1, 0), p - A) = p_y - A_y: positive below the line (y grows downward).
    a, b = (0.0, 0.5), (1.0, 0.5)
    assert direction(line_side(a, b, (0.5, 0.8)), line_side(a, b, (0.5, 0.2))) == "in"


def test_on_the_line_or_beside_the_segment_has_no_side() -> None:
    a, b = (0.5, 0.2), (0.5, 0.6)
    assert line_side(a, b, (0.5, 0.4)) == 0
    assert line_side(a, b, (0.2, 0.9)) == 0  # below the segment's end
    assert line_side(a, b, (0.2, 0.4)) == 1


@pytest.mark.parametrize(
    ("p", "inside"),
    [((0.2, 0.5), True), ((0.05, 0.5), False), ((0.5, 0.5), False), ((0.39, 0.89), True)],
)
def test_point_in_polygon(p: tuple[float, float], inside: bool) -> None:
    lobby = ((0.1, 0.1), (0.4, 0.1), (0.4, 0.9), (0.1, 0.9))
    assert in_polygon(p, lobby) is inside


def test_concave_polygon() -> None:
    u_shape = ((0, 0), (1, 0), (1, 1), (0.6, 1), (0.6, 0.3), (0.4, 0.3), (0.4, 1), (0, 1))
    assert in_polygon((0.5, 0.8), u_shape) is False
    assert in_polygon((0.2, 0.8), u_shape) is True


def test_a_point_within_the_margin_of_a_line_has_no_side() -> None:
    a, b = DOWN
    size = (640, 360)  # margin 0.01 of the width: 6.4 px
    assert line_side(a, b, (0.5 + 6 / 640, 0.5), 0.01, size) == 0
    assert line_side(a, b, (0.5 - 6 / 640, 0.5), 0.01, size) == 0
    assert line_side(a, b, (0.5 + 7 / 640, 0.5), 0.01, size) == -1
    assert line_side(a, b, (0.5 - 7 / 640, 0.5), 0.01, size) == 1
    # measured in pixels: a horizontal line's margin is as many pixels as a vertical one's
    h = ((0.0, 0.5), (1.0, 0.5))
    assert line_side(*h, (0.5, 0.5 + 6 / 360), 0.01, size) == 0
    assert line_side(*h, (0.5, 0.5 + 7 / 360), 0.01, size) == 1


def test_zone_side_is_zero_near_any_edge_and_signed_elsewhere() -> None:
    lobby = ((0.1, 0.1), (0.4, 0.1), (0.4, 0.9), (0.1, 0.9))
    size = (1000, 500)  # margin 0.005: 5 px
    assert zone_side((0.2, 0.5), lobby, 0.005, size) == 1
    assert zone_side((0.05, 0.5), lobby, 0.005, size) == -1
    assert zone_side((0.4 - 0.004, 0.5), lobby, 0.005, size) == 0  # 4 px inside the right edge
    assert zone_side((0.4 + 0.004, 0.5), lobby, 0.005, size) == 0  # 4 px outside it
    assert zone_side((0.2, 0.9 + 4 / 500), lobby, 0.005, size) == 0  # 4 px below the bottom
    assert zone_side((0.4 + 0.003, 0.9 + 0.003), lobby, 0.005, size) == 0  # beside a corner
    assert zone_side((0.4 + 0.004, 0.9 + 0.008), lobby, 0.005, size) == -1  # 5.7 px from it
    assert zone_side((0.4 - 0.004, 0.5), lobby) == 1  # no margin: the polygon alone decides

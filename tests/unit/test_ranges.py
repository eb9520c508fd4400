"""Byte ranges of the event clips: what a Range header asks for (RFC 9110, section 14)."""

from __future__ import annotations

import pytest
from websockets.http11 import Response

from pipeline.gateway.http import response
from pipeline.gateway.media import ClipCache, ranged
from pipeline.protocol.ranges import ByteRange, Unsatisfiable, requested_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=0-", ByteRange(0, 999)),  # what a browser asks first
        ("bytes=900-5000", ByteRange(900, 999)),  # an end past the body is cut to it
        ("bytes=-100", ByteRange(900, 999)),  # the last 100 bytes
        ("bytes=-5000", ByteRange(0, 999)),
        (" Bytes = 10-19", ByteRange(10, 19)),  # the unit is case-insensitive; spaces pass
        ("bytes=10-19", ByteRange(10, 19)),
        (None, None),
        ("", None),
        ("items=0-9", None),  # another unit
        ("bytes=0-9,20-29", None),  # several ranges: the whole body (allowed)
        ("bytes=9-0", None),  # last before first: invalid, ignored
        ("bytes=a-9", None),
        ("bytes=-", None),
        ("bytes=5", None),
    ],
)
def test_what_a_range_header_asks_for(header: str | None, expected: ByteRange | None) -> None:
    assert requested_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_a_range_past_the_body_cannot_be_satisfied(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        requested_range(header, 1000)


def test_content_range_and_length() -> None:
    r = ByteRange(900, 999)
    assert (r.length, r.content_range(1000)) == (100, "bytes 900-999/1000")


def _clip_answer(body: bytes) -> Response:
    return response(200, body, "video/mp4", Accept_Ranges="bytes", ETag='"abc"')


def test_a_clip_answer_is_cut_to_the_range_and_the_cached_one_never_changes() -> None:
    whole = _clip_answer(bytes(range(200)))
    part = ranged(whole, "bytes=10-19", None)
    assert (part.status_code, part.body) == (206, bytes(range(10, 20)))
    assert part.headers["Content-Range"] == "bytes 10-19/200"
    assert part.headers["Content-Length"] == "10" and part.headers["ETag"] == '"abc"'
    assert ranged(whole, "bytes=10-19", '"abc"').status_code == 206  # If-Range matches
    assert ranged(whole, "bytes=10-19", '"old"').status_code == 200  # other bytes: whole
    refused = ranged(whole, "bytes=200-", None)
    assert (refused.status_code, refused.headers["Content-Range"]) == (416, "bytes */200")
    same = ranged(whole, None, None)
    assert (same.status_code, same.body) == (200, whole.body) and same is not whole
    same.headers["X-Gateway-Process"] = "1"  # what a peered gateway adds to every answer
    assert "X-Gateway-Process" not in whole.headers
    assert whole.headers["Content-Length"] == "200"


def test_the_clip_cache_keeps_the_last_used_within_its_budget() -> None:
    cache = ClipCache(max_bytes=250)
    cache.put("a", _clip_answer(b"a" * 100))
    cache.put("b", _clip_answer(b"b" * 100))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", _clip_answer(b"c" * 100))  # over budget: b, the least recent, goes
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.bytes == 200
    cache.put("huge", _clip_answer(b"h" * 300))  # bigger than the budget: not kept
    assert cache.get("huge") is None and cache.bytes == 200

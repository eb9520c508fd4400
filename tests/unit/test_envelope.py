"""The ingest message format: plain JPEG or the VAE1 envelope, and every refusal."""

from __future__ import annotations

import pytest

from pipeline.protocol.envelope import (
    ENVELOPE_HEADER_SIZE,
    IngestError,
    build_envelope,
    parse_ingest_message,
)

LIMIT = 1_000_000


def test_plain_jpeg_has_no_sender_ids(dog_jpeg: bytes) -> None:
    frame = parse_ingest_message(dog_jpeg, LIMIT)
    assert (frame.frame_id, frame.capture_ts_us) == (None, None)
    assert (frame.width, frame.height) == (768, 576)
    assert frame.image == dog_jpeg


def test_envelope_round_trip(dog_jpeg: bytes) -> None:
    message = build_envelope(2**40 + 7, 1_700_000_000_123_456, dog_jpeg)
    assert len(message) == ENVELOPE_HEADER_SIZE + len(dog_jpeg)
    frame = parse_ingest_message(message, LIMIT)
    assert frame.frame_id == 2**40 + 7
    assert frame.capture_ts_us == 1_700_000_000_123_456
    assert frame.image == dog_jpeg


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (b"", "empty_frame"),
        (b"GIF89a....", "not_jpeg"),
        (b"VAE\x01\x00\x00\x00", "truncated_envelope"),
        (build_envelope(1, 1, b""), "truncated_envelope"),
        (b"VAE\x02" + bytes(16) + b"\xff\xd8\xff\xd9", "bad_envelope_version"),
        (build_envelope(-1, 5, b"\xff\xd8\xff\xd9"), "bad_envelope"),
        (b"\xff\xd8\xff" + bytes(100), "truncated_jpeg"),
        (b"\xff\xd8\xff\xe0garbage\xff\xd9", "corrupt_jpeg"),
    ],
)
def test_refusals_have_stable_codes(message: bytes, code: str) -> None:
    with pytest.raises(IngestError) as raised:
        parse_ingest_message(message, LIMIT)
    assert raised.value.code == code
    assert raised.value.message


def test_truncated_jpeg_is_refused(dog_jpeg: bytes) -> None:
    with pytest.raises(IngestError) as raised:
        parse_ingest_message(dog_jpeg[:-1000], LIMIT)
    assert raised.value.code == "truncated_jpeg"


def test_size_limit_counts_the_whole_message(dog_jpeg: bytes) -> None:
    parse_ingest_message(dog_jpeg, len(dog_jpeg))
    with pytest.raises(IngestError) as raised:
        parse_ingest_message(dog_jpeg, len(dog_jpeg) - 1)
    assert raised.value.code == "frame_too_large"
    assert str(len(dog_jpeg)) in raised.value.message


def test_envelope_error_carries_the_frame_id() -> None:
    with pytest.raises(IngestError) as raised:
        parse_ingest_message(build_envelope(99, 5, b"not a jpeg"), LIMIT)
    assert raised.value.code == "not_jpeg"
    assert raised.value.frame_id == 99


def test_an_oversize_envelope_is_refused_with_its_frame_id(dog_jpeg: bytes) -> None:
    """A sender matches refusals to frames by id, so the size check must not lose it."""
    message = build_envelope(41, 1_700_000_000_000_000, dog_jpeg)
    with pytest.raises(IngestError) as raised:
        parse_ingest_message(message, len(message) - 1)
    assert (raised.value.code, raised.value.frame_id) == ("frame_too_large", 41)

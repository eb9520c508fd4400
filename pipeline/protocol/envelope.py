"""One ingest WebSocket binary message = one frame: plain JPEG, or the VAE1 envelope.

Envelope (all integers big-endian)::

    offset  size  field
    0       4     magic b"VAE\\x01" (b"VAE" + version 1)
    4       8     frame_id, signed 64-bit
    12      8     capture_ts_us, signed 64-bit, UNIX epoch microseconds
    20      ...   JPEG bytes

Plain JPEG (what a browser's canvas.toBlob gives) is accepted as it is; the gateway then
numbers frames per connection and uses its receive time as the capture time.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import simplejpeg

from pipeline.protocol.messages import Refused

ENVELOPE_MAGIC = b"VAE"
ENVELOPE_VERSION = 1
ENVELOPE_HEADER = struct.Struct(">3sBqq")
ENVELOPE_HEADER_SIZE = ENVELOPE_HEADER.size  # 20
JPEG_SOI = b"\xff\xd8\xff"
JPEG_EOI = b"\xff\xd9"


class IngestError(Refused, ValueError):
    """A frame the gateway refuses (``frame_id``: the sender's id for it, where known)."""

    def __init__(self, code: str, message: str, frame_id: int | None = None) -> None:
        super().__init__(code, message)
        self.frame_id = frame_id


@dataclass(frozen=True, slots=True)
class IngestFrame:
    """A validated frame: optional sender ids, the JPEG and its size."""

    frame_id: int | None
    capture_ts_us: int | None
    image: bytes
    width: int
    height: int


def build_envelope(frame_id: int, capture_ts_us: int, jpeg: bytes) -> bytes:
    """The binary message a sender writes to attach its own frame id and capture time."""
    return ENVELOPE_HEADER.pack(ENVELOPE_MAGIC, ENVELOPE_VERSION, frame_id, capture_ts_us) + jpeg


def parse_ingest_message(message: bytes, max_frame_bytes: int) -> IngestFrame:
    """Validate one ingest message; raise IngestError with a code for anything unusable."""
    size = len(message)
    if size == 0:
        raise IngestError(
            "empty_frame", "empty message: send one JPEG (or VAE1 envelope) per message"
        )
    if size > max_frame_bytes:
        raise IngestError(
            "frame_too_large",
            f"frame of {size} bytes exceeds the limit of {max_frame_bytes} bytes",
            envelope_frame_id(message),
        )
    frame_id: int | None = None
    capture_ts_us: int | None = None
    image = message
    if message.startswith(ENVELOPE_MAGIC):
        if size < ENVELOPE_HEADER_SIZE:
            raise IngestError(
                "truncated_envelope",
                f"envelope of {size} bytes is shorter than its {ENVELOPE_HEADER_SIZE}-byte header",
            )
        _, version, frame_id, capture_ts_us = ENVELOPE_HEADER.unpack_from(message)
        if version != ENVELOPE_VERSION:
            raise IngestError(
                "bad_envelope_version",
                f"envelope version {version} is not supported "
                f"(this gateway speaks {ENVELOPE_VERSION})",
                frame_id,
            )
        if frame_id < 0 or capture_ts_us < 0:
            raise IngestError(
                "bad_envelope", "frame_id and capture_ts_us must not be negative", frame_id
            )
        image = message[ENVELOPE_HEADER_SIZE:]
        if not image:
            raise IngestError(
                "truncated_envelope", "envelope carries no image after its header", frame_id
            )
    width, height = jpeg_size(image, frame_id)
    return IngestFrame(frame_id, capture_ts_us, image, width, height)


def envelope_frame_id(message: bytes) -> int | None:
    """The sender's frame id from an envelope header, so even a refusal names its frame."""
    if message.startswith(ENVELOPE_MAGIC) and len(message) >= ENVELOPE_HEADER_SIZE:
        _, version, frame_id, _ = ENVELOPE_HEADER.unpack_from(message)
        if version == ENVELOPE_VERSION and frame_id >= 0:
            return int(frame_id)
    return None


# The most pixels a frame may declare: a few-KiB JPEG can claim 65535 x 65535 pixels (12 GiB
# decoded), so the gateway refuses it and the worker checks again before decoding.
MAX_FRAME_PIXELS = 40_000_000  # above 8K UHD (7680 x 4320 = 33 MP)


def jpeg_size(image: bytes, frame_id: int | None = None) -> tuple[int, int]:
    """Width and height from a JPEG's header; IngestError if it is not a whole JPEG."""
    if not image.startswith(JPEG_SOI):
        raise IngestError(
            "not_jpeg",
            "payload is not a JPEG (it must start with FF D8 FF); "
            "send JPEG bytes or a VAE1 envelope",
            frame_id,
        )
    # A JPEG cut short in transit still has a valid header: require the end-of-image marker
    # (some encoders pad a few bytes after it).
    if image.rfind(JPEG_EOI, max(0, len(image) - 64)) < 0:
        raise IngestError(
            "truncated_jpeg", "JPEG has no end-of-image marker (FF D9): truncated?", frame_id
        )
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(image)
    except ValueError as exc:
        raise IngestError("corrupt_jpeg", f"JPEG header is unreadable: {exc}", frame_id) from None
    if width <= 0 or height <= 0:
        raise IngestError("corrupt_jpeg", f"JPEG header gives a size of {width}x{height}", frame_id)
    if width * height > MAX_FRAME_PIXELS:
        raise IngestError(
            "image_too_large",
            f"JPEG of {width}x{height} pixels: more than {MAX_FRAME_PIXELS:,} pixels",
            frame_id,
        )
    return int(width), int(height)

"""Which stream ids are accepted: safe in URLs, Kafka keys, file names and metric labels."""

from __future__ import annotations

import re

STREAM_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")
STREAM_ID_RULE = "1-128 characters from A-Z a-z 0-9 . _ -"


class BadStreamId(ValueError):
    """A stream id outside the allowed charset or length."""


def check_stream_id(candidate: str) -> str:
    """Return the id unchanged, or raise BadStreamId with a message a user can act on."""
    if not STREAM_ID_PATTERN.fullmatch(candidate):
        shown = candidate if len(candidate) <= 64 else candidate[:64] + "..."
        raise BadStreamId(f"bad stream_id {shown!r}: use {STREAM_ID_RULE}")
    return candidate

"""HTTP byte ranges (RFC 9110, section 14) for the event clips: one range per request.

Browsers fetch a video in pieces (`Range: bytes=0-`, then the parts they seek to), and
Safari plays an MP4 only from a server that answers them with 206. Pure, so the rules are
tested without a server: which range a header asks for, or that it cannot be satisfied.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable(ValueError):
    """The range starts past the body (answer 416 with ``Content-Range: bytes */size``)."""


def requested_range(header: str | None, size: int) -> ByteRange | None:
    """The range a ``Range`` header asks of a body of ``size`` bytes; None for the whole body.

    The whole body also answers a header this server does not honour, as RFC 9110 allows
    (another unit, several ranges, a malformed one). Raises Unsatisfiable for a range that
    starts at or past the end, or an empty suffix.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = (part.strip() for part in spec.partition("-"))
    if not dash or not (first or last) or not all(p.isdigit() for p in (first, last) if p):
        return None
    if not first:  # bytes=-N: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable(f"bytes=-{suffix} of {size}")
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise Unsatisfiable(f"bytes={start}- of {size}")
    end = int(last) if last else size - 1
    return ByteRange(start, min(end, size - 1))

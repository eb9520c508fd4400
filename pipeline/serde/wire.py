"""Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the Avro body."""

from __future__ import annotations

import struct

MAGIC = 0
HEADER = struct.Struct(">bI")
HEADER_SIZE = HEADER.size  # 5


class WireFormatError(ValueError):
    """Bytes that are not a Confluent-framed record."""


def header(schema_id: int) -> bytes:
    """The 5 bytes that precede every record written with this schema id."""
    if not 0 <= schema_id < 2**32:
        raise WireFormatError(f"schema id {schema_id} does not fit in 4 bytes")
    return HEADER.pack(MAGIC, schema_id)


def schema_id_of(data: bytes | memoryview) -> int:
    """The schema id a framed record was written with."""
    if len(data) < HEADER_SIZE:
        raise WireFormatError(f"record of {len(data)} bytes is shorter than the 5-byte header")
    magic, schema_id = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise WireFormatError(f"unknown magic byte {magic} (expected {MAGIC})")
    return int(schema_id)

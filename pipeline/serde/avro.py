"""Avro record encoding (fastavro) in the Confluent wire format, with schema resolution."""

from __future__ import annotations

import io
from typing import Any, Generic, TypeVar, cast

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.schema import to_parsing_canonical_form

from pipeline.serde import wire
from pipeline.serde.registry import SchemaIds, UnknownSchemaError

R = TypeVar("R")


class SerdeError(ValueError):
    """A record could not be encoded or decoded; the message says which and why."""


class SchemaUnavailable(SerdeError):
    """The record names a schema id not resolvable now: the registry failed, or the writer
    is newer than this reader. Unlike other decode errors this may pass: wait and retry."""

    def __init__(self, schema_id: int, message: str) -> None:
        super().__init__(message)
        self.schema_id = schema_id


class AvroEncoder(Generic[R]):
    """Writes records of one schema; the schema id is resolved once, at construction.

    A record whose last field is ``bytes`` (a frame's JPEG, a dead letter's value) is
    written in two parts: fastavro writes the fields before it and, in its place, the
    length (Avro writes ``bytes`` as a long length then the raw bytes), and the bytes are
    appended once. Same bytes as writing the whole record (tests/unit/test_avro.py checks
    it), but the payload is copied once instead of three times (into fastavro's buffer,
    out of it, and into the result).
    """

    def __init__(self, schema: dict[str, Any], ids: SchemaIds, subject: str) -> None:
        self.schema_id = ids.id_for(subject, schema)
        self._parsed = parse_schema(schema)
        self._header = wire.header(self.schema_id)
        fields = schema.get("fields") or [{}]
        self._tail: str | None = None
        if schema.get("type") == "record" and fields[-1].get("type") == "bytes":
            self._tail = fields[-1]["name"]
            length = {"name": self._tail, "type": "long"}
            self._head = parse_schema({**schema, "fields": [*fields[:-1], length]})

    def encode(self, record: R) -> bytes:
        buf = io.BytesIO()
        buf.write(self._header)
        fields = cast(dict[str, Any], record)
        try:
            if self._tail is None:
                schemaless_writer(buf, self._parsed, fields)
                return buf.getvalue()
            data = fields[self._tail]
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"{self._tail} must be bytes, not {type(data).__name__}")
            schemaless_writer(buf, self._head, {**fields, self._tail: len(data)})
        except (ValueError, TypeError, KeyError) as exc:
            raise SerdeError(f"cannot encode record: {exc}") from exc
        return b"".join((buf.getvalue(), data))


class AvroDecoder(Generic[R]):
    """Reads records written with any schema the ids know, resolved to one reader schema.

    Resolution is Avro's: fields the reader adds with defaults are filled in, fields the
    reader dropped are skipped. That is what lets producers and consumers upgrade apart.
    """

    def __init__(self, reader_schema: dict[str, Any], ids: SchemaIds) -> None:
        self._reader = parse_schema(reader_schema)
        self._reader_form = to_parsing_canonical_form(reader_schema)
        self._ids = ids
        # schema id -> (writer schema, reader schema or None when they are the same)
        self._plans: dict[int, tuple[Any, Any]] = {}

    def _plan(self, schema_id: int) -> tuple[Any, Any]:
        plan = self._plans.get(schema_id)
        if plan is None:
            try:
                writer = self._ids.schema_for(schema_id)
            except UnknownSchemaError as exc:
                raise SchemaUnavailable(schema_id, str(exc)) from exc
            same = to_parsing_canonical_form(writer) == self._reader_form
            # Resolution costs time on every record: skip it when writer and reader agree.
            plan = (self._reader, None) if same else (parse_schema(writer), self._reader)
            self._plans[schema_id] = plan
        return plan

    def decode(self, data: bytes) -> R:
        try:
            schema_id = wire.schema_id_of(data)
        except wire.WireFormatError as exc:
            raise SerdeError(str(exc)) from exc
        writer, reader = self._plan(schema_id)
        stream = io.BytesIO(data)
        stream.seek(wire.HEADER_SIZE)
        try:
            record = schemaless_reader(stream, writer, reader)
        # SchemaResolutionError: a record of another topic's schema (found by fuzzing).
        except (
            EOFError,
            ValueError,
            TypeError,
            IndexError,
            OverflowError,
            SchemaResolutionError,
        ) as exc:
            raise SerdeError(f"cannot decode record with schema id {schema_id}: {exc}") from exc
        return cast(R, record)

"""Where schema ids come from, and the local ids used when no registry is configured.

Without a registry, an id is derived from the schema itself (31 bits of its CRC-64-AVRO
fingerprint), so every process that ships the same schemas/*.avsc agrees on ids without
talking to anyone. The registry client (a Kafka client) is ``pipeline.kafka.registry``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from fastavro.schema import fingerprint, to_parsing_canonical_form

import schemas as shipped_schemas


class UnknownSchemaError(LookupError):
    """A record names a schema id this process cannot resolve."""


class SchemaIds(Protocol):
    """Maps schemas to ids for writers and ids back to schemas for readers."""

    def id_for(self, subject: str, schema: dict[str, Any]) -> int:
        """The id a writer puts in front of records written with ``schema``."""
        ...

    def schema_for(self, schema_id: int) -> dict[str, Any]:
        """The writer schema behind an id."""
        ...


def local_schema_id(schema: dict[str, Any]) -> int:
    """31 bits of the schema's CRC-64-AVRO fingerprint of its parsing canonical form."""
    digest = fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")
    return int(digest, 16) & 0x7FFF_FFFF


class LocalSchemaIds:
    """Ids derived from the schemas themselves; knows every schema shipped in schemas/ and
    their earlier versions (schemas/earlier/), so records of older writers still decode."""

    def __init__(self, extra: Iterable[dict[str, Any]] = ()) -> None:
        self._by_id: dict[int, dict[str, Any]] = {}
        for name in shipped_schemas.names():
            self._remember(shipped_schemas.load(name))
        for schema in shipped_schemas.earlier():
            self._remember(schema)
        for schema in extra:
            self._remember(schema)

    def _remember(self, schema: dict[str, Any]) -> int:
        schema_id = local_schema_id(schema)
        self._by_id.setdefault(schema_id, schema)
        return schema_id

    def id_for(self, subject: str, schema: dict[str, Any]) -> int:
        return self._remember(schema)

    def schema_for(self, schema_id: int) -> dict[str, Any]:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise UnknownSchemaError(
                f"schema id {schema_id} is not one of the local schemas "
                f"({sorted(self._by_id)}); the writer used another schema version: "
                "set VAE_SCHEMA_REGISTRY_URL so readers can fetch it"
            ) from None

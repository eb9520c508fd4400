"""Where schema ids come from: a Confluent-compatible registry, or the local schema files.

With a registry (Redpanda's built-in one, Confluent's, Karapace) ids are the registry's
and any writer schema can be fetched by id. Without one, an id is derived from the
schema itself (31 bits of its CRC-64-AVRO fingerprint), so every process that ships the
same schemas/*.avsc agrees on ids without talking to anyone.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from typing import Any, Protocol

from fastavro.schema import fingerprint, to_parsing_canonical_form

import schemas as shipped_schemas

log = logging.getLogger(__name__)


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
    """Ids derived from the schemas themselves; knows every schema shipped in schemas/."""

    def __init__(self, extra: Iterable[dict[str, Any]] = ()) -> None:
        self._by_id: dict[int, dict[str, Any]] = {}
        for name in shipped_schemas.names():
            self._remember(shipped_schemas.load(name))
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


class RegistrySchemaIds:
    """A Confluent-compatible schema registry, through confluent-kafka's client (cached)."""

    def __init__(self, url: str, basic_auth: str = "") -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        conf: dict[str, Any] = {"url": url}
        if basic_auth:
            conf["basic.auth.user.info"] = basic_auth
        self._client = SchemaRegistryClient(conf)
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def id_for(self, subject: str, schema: dict[str, Any]) -> int:
        from confluent_kafka.schema_registry import Schema

        text = json.dumps(schema, sort_keys=True)
        with self._lock:
            if (subject, text) not in self._ids:
                schema_id = self._client.register_schema(subject, Schema(text, schema_type="AVRO"))
                log.info("registered %s as schema id %d", subject, schema_id)
                self._ids[(subject, text)] = schema_id
                self._schemas[schema_id] = schema
            return self._ids[(subject, text)]

    def schema_for(self, schema_id: int) -> dict[str, Any]:
        with self._lock:
            if schema_id not in self._schemas:
                try:
                    found = self._client.get_schema(schema_id)
                except Exception as exc:  # the client raises its own error types
                    raise UnknownSchemaError(f"schema id {schema_id}: {exc}") from exc
                if found.schema_str is None:
                    raise UnknownSchemaError(
                        f"schema id {schema_id}: the registry returned no schema"
                    )
                self._schemas[schema_id] = json.loads(found.schema_str)
            return self._schemas[schema_id]


def schema_ids_from(url: str, basic_auth: str = "") -> SchemaIds:
    """A registry client when a URL is configured, the local ids otherwise."""
    if url:
        return RegistrySchemaIds(url, basic_auth)
    return LocalSchemaIds()

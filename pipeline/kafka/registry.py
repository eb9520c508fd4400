"""A Confluent-compatible schema registry (Redpanda's built-in one, Confluent's, Karapace).

With a registry, ids are the registry's and any writer schema can be fetched by id, so
readers decode records written with schema versions they do not ship.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from pipeline.serde.registry import LocalSchemaIds, SchemaIds, UnknownSchemaError

log = logging.getLogger(__name__)


class RegistrySchemaIds:
    """A Confluent-compatible schema registry, through confluent-kafka's client (cached)."""

    def __init__(self, url: str, basic_auth: str = "") -> None:
        conf: dict[str, Any] = {"url": url}
        if basic_auth:
            conf["basic.auth.user.info"] = basic_auth
        self._client = SchemaRegistryClient(conf)
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def id_for(self, subject: str, schema: dict[str, Any]) -> int:
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

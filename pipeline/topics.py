"""The engine's topics, each declared once: name, partitions and config, key, and codec.

In the spirit of quixstreams' ``Topic``: whoever creates, writes or reads a topic (the
gateway, the worker, the benchmarks, the tests, `vae topics`) takes its declaration from
here, so a topic's partitioning, retention and Avro schema cannot drift between them.
A topic the engine gains (tracks, events, counts) is one more entry in ``EngineTopics``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Generic, TypeVar

import schemas
from pipeline.config import TopicSettings
from pipeline.serde import (
    AvroDecoder,
    AvroEncoder,
    CountsRecord,
    DeadLetterRecord,
    DetectionsRecord,
    EventRecord,
    FrameRecord,
    RulesRecord,
    SchemaIds,
    TracksRecord,
)

R = TypeVar("R")

DEAD_LETTER_OVERHEAD = 65_536  # bytes a dead letter may add to the record it carries


def _stream_id(record: Any) -> str:
    """Every topic of the engine is keyed by stream_id: one stream, one partition, in order."""
    return str(record["stream_id"])


def _original_key(record: DeadLetterRecord) -> str:
    """A dead letter keeps its record's key (the stream_id, when it could be read)."""
    return record["key"] or ""


@dataclass(frozen=True)
class Topic(Generic[R]):
    """One topic as the engine creates and uses it."""

    name: str
    schema: str  # schemas/<schema>.avsc: the value's Avro schema
    partitions: int
    replication_factor: int
    config: Mapping[str, str]
    key_of: Callable[[R], str] = _stream_id

    @property
    def subject(self) -> str:
        """The schema registry subject of the value (Confluent's TopicNameStrategy)."""
        return f"{self.name}-value"

    def writer(self, ids: SchemaIds) -> TopicWriter[R]:
        """Key and value serialisers; resolves (with a registry: registers) the schema id now."""
        return TopicWriter(self, AvroEncoder(schemas.load(self.schema), ids, self.subject))

    def reader(self, ids: SchemaIds) -> AvroDecoder[R]:
        """The value deserialiser: any writer schema the ids know, resolved to this one."""
        return AvroDecoder(schemas.load(self.schema), ids)


class TopicWriter(Generic[R]):
    """What a producer needs to write a record to its topic: the name, the key, the bytes."""

    def __init__(self, topic: Topic[R], encoder: AvroEncoder[R]) -> None:
        self.topic = topic.name
        self._key_of = topic.key_of
        self._encoder = encoder

    def key(self, record: R) -> bytes:
        return self._key_of(record).encode()

    def value(self, record: R) -> bytes:
        return self._encoder.encode(record)


@dataclass(frozen=True)
class EngineTopics:
    """Every topic of the engine, from the topic settings."""

    frames: Topic[FrameRecord]
    detections: Topic[DetectionsRecord]
    tracks: Topic[TracksRecord]
    events: Topic[EventRecord]
    counts: Topic[CountsRecord]
    rules: Topic[RulesRecord]
    dead_letters: Topic[DeadLetterRecord]
    sink_dead_letters: Topic[DeadLetterRecord]

    def all(self) -> tuple[Topic[Any], ...]:
        """In the order declared above."""
        return tuple(getattr(self, field.name) for field in fields(self))

    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.all())


def _rules_key(_record: Any) -> str:
    """One key: compaction keeps only the rules in force."""
    return "rules"


def engine_topics(settings: TopicSettings) -> EngineTopics:
    """The declarations, with the partition counts and retention the settings ask for."""

    def deleted(
        name: str,
        schema: str,
        partitions: int,
        retention_ms: int,
        *,
        max_message_bytes: int | None = None,
        key_of: Callable[[Any], str] = _stream_id,
    ) -> Topic[Any]:
        """A topic whose records are deleted after ``retention_ms``."""
        config = {"retention.ms": str(retention_ms)}
        if max_message_bytes is not None:
            config["max.message.bytes"] = str(max_message_bytes)
        config["cleanup.policy"] = "delete"
        return Topic(name, schema, partitions, settings.replication_factor, config, key_of)

    # The analytics' outputs share the detections' partitioning (key stream_id).
    shared = settings.detections_partitions
    return EngineTopics(
        frames=deleted(
            settings.frames,
            schemas.FRAME,
            settings.frames_partitions,
            settings.frames_retention_ms,
            max_message_bytes=settings.max_message_bytes,
        ),
        detections=deleted(
            settings.detections, schemas.DETECTIONS, shared, settings.detections_retention_ms
        ),
        tracks=deleted(settings.tracks, schemas.TRACKS, shared, settings.detections_retention_ms),
        events=deleted(settings.events, schemas.EVENTS, shared, settings.events_retention_ms),
        counts=deleted(settings.counts, schemas.COUNTS, shared, settings.events_retention_ms),
        rules=Topic(
            settings.rules,
            schemas.RULES,
            1,
            settings.replication_factor,
            {"cleanup.policy": "compact"},
            key_of=_rules_key,
        ),
        dead_letters=deleted(
            settings.dead_letters,
            schemas.DEAD_LETTER,
            1,  # rare records, read by a person or a repair job: order across streams kept
            settings.dead_letters_retention_ms,
            # a whole frame record and what is said about it
            max_message_bytes=settings.max_message_bytes + DEAD_LETTER_OVERHEAD,
            key_of=_original_key,
        ),
        # The sinks' (connectors/sinks): an event or counts record they gave up on.
        sink_dead_letters=deleted(
            settings.sink_dead_letters,
            schemas.DEAD_LETTER,
            1,
            settings.dead_letters_retention_ms,
            key_of=_original_key,
        ),
    )

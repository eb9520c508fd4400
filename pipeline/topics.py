"""The engine's topics, each declared once: name, partitions and config, key, and codec.

In the spirit of quixstreams' ``Topic``: whoever creates, writes or reads a topic (the
gateway, the worker, the benchmarks, the tests, `vae topics`) takes its declaration from
here, so a topic's partitioning, retention and Avro schema cannot drift between them.
A topic the engine gains (tracks, events, counts) is one more entry in ``EngineTopics``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
        return (
            self.frames,
            self.detections,
            self.tracks,
            self.events,
            self.counts,
            self.rules,
            self.dead_letters,
            self.sink_dead_letters,
        )

    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.all())


def _rules_key(_record: Any) -> str:
    """One key: compaction keeps only the rules in force."""
    return "rules"


def engine_topics(settings: TopicSettings) -> EngineTopics:
    """The declarations, with the partition counts and retention the settings ask for."""
    return EngineTopics(
        frames=Topic(
            settings.frames,
            schemas.FRAME,
            settings.frames_partitions,
            settings.replication_factor,
            {
                "retention.ms": str(settings.frames_retention_ms),
                "max.message.bytes": str(settings.max_message_bytes),
                "cleanup.policy": "delete",
            },
        ),
        detections=Topic(
            settings.detections,
            schemas.DETECTIONS,
            settings.detections_partitions,
            settings.replication_factor,
            {"retention.ms": str(settings.detections_retention_ms), "cleanup.policy": "delete"},
        ),
        # The analytics' outputs share the detections' partitioning (key stream_id).
        tracks=Topic(
            settings.tracks,
            schemas.TRACKS,
            settings.detections_partitions,
            settings.replication_factor,
            {"retention.ms": str(settings.detections_retention_ms), "cleanup.policy": "delete"},
        ),
        events=Topic(
            settings.events,
            schemas.EVENTS,
            settings.detections_partitions,
            settings.replication_factor,
            {"retention.ms": str(settings.events_retention_ms), "cleanup.policy": "delete"},
        ),
        counts=Topic(
            settings.counts,
            schemas.COUNTS,
            settings.detections_partitions,
            settings.replication_factor,
            {"retention.ms": str(settings.events_retention_ms), "cleanup.policy": "delete"},
        ),
        rules=Topic(
            settings.rules,
            schemas.RULES,
            1,
            settings.replication_factor,
            {"cleanup.policy": "compact"},
            key_of=_rules_key,
        ),
        dead_letters=Topic(
            settings.dead_letters,
            schemas.DEAD_LETTER,
            1,  # rare records, read by a person or a repair job: order across streams kept
            settings.replication_factor,
            {
                "retention.ms": str(settings.dead_letters_retention_ms),
                # a whole frame record and what is said about it
                "max.message.bytes": str(settings.max_message_bytes + DEAD_LETTER_OVERHEAD),
                "cleanup.policy": "delete",
            },
            key_of=_original_key,
        ),
        # The sinks' (connectors/sinks): an event or counts record they gave up on.
        sink_dead_letters=Topic(
            settings.sink_dead_letters,
            schemas.DEAD_LETTER,
            1,
            settings.replication_factor,
            {
                "retention.ms": str(settings.dead_letters_retention_ms),
                "cleanup.policy": "delete",
            },
            key_of=_original_key,
        ),
    )

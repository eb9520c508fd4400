"""Avro encoding of the topics' records in the Confluent wire format."""

from pipeline.serde.avro import AvroDecoder, AvroEncoder, SchemaUnavailable, SerdeError
from pipeline.serde.records import (
    CountsRecord,
    DeadLetterRecord,
    DetectedObjectRecord,
    DetectionsRecord,
    EventRecord,
    FrameRecord,
    RulesRecord,
    StageTimings,
    TrackedObjectRecord,
    TracksRecord,
    dead_letter_record,
    detected_objects,
    detections_record,
    frame_record,
    stage_timings,
)
from pipeline.serde.registry import LocalSchemaIds, SchemaIds, UnknownSchemaError

__all__ = [
    "AvroDecoder",
    "AvroEncoder",
    "CountsRecord",
    "DeadLetterRecord",
    "DetectedObjectRecord",
    "DetectionsRecord",
    "EventRecord",
    "FrameRecord",
    "LocalSchemaIds",
    "RulesRecord",
    "SchemaIds",
    "SchemaUnavailable",
    "SerdeError",
    "StageTimings",
    "TrackedObjectRecord",
    "TracksRecord",
    "UnknownSchemaError",
    "dead_letter_record",
    "detected_objects",
    "detections_record",
    "frame_record",
    "stage_timings",
]

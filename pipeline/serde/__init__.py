"""Avro encoding of the topics' records in the Confluent wire format."""

from pipeline.serde.avro import AvroDecoder, AvroEncoder, SerdeError
from pipeline.serde.records import (
    CountsRecord,
    DetectedObjectRecord,
    DetectionsRecord,
    EventRecord,
    FrameRecord,
    RulesRecord,
    StageTimings,
    TrackedObjectRecord,
    TracksRecord,
    detected_objects,
    detections_record,
    frame_record,
)
from pipeline.serde.registry import LocalSchemaIds, SchemaIds, UnknownSchemaError

__all__ = [
    "AvroDecoder",
    "AvroEncoder",
    "CountsRecord",
    "DetectedObjectRecord",
    "DetectionsRecord",
    "EventRecord",
    "FrameRecord",
    "LocalSchemaIds",
    "RulesRecord",
    "SchemaIds",
    "SerdeError",
    "StageTimings",
    "TrackedObjectRecord",
    "TracksRecord",
    "UnknownSchemaError",
    "detected_objects",
    "detections_record",
    "frame_record",
]

"""Avro encoding of the topics' records in the Confluent wire format."""

from pipeline.serde.avro import AvroDecoder, AvroEncoder, SchemaUnavailable, SerdeError
from pipeline.serde.records import (
    DeadLetterRecord,
    DetectedObjectRecord,
    DetectionsRecord,
    FrameRecord,
    StageTimings,
    dead_letter_record,
    detected_objects,
    detections_record,
    frame_record,
)
from pipeline.serde.registry import LocalSchemaIds, SchemaIds, UnknownSchemaError

__all__ = [
    "AvroDecoder",
    "AvroEncoder",
    "DeadLetterRecord",
    "DetectedObjectRecord",
    "DetectionsRecord",
    "FrameRecord",
    "LocalSchemaIds",
    "SchemaIds",
    "SchemaUnavailable",
    "SerdeError",
    "StageTimings",
    "UnknownSchemaError",
    "dead_letter_record",
    "detected_objects",
    "detections_record",
    "frame_record",
]

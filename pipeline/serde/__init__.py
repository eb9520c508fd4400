"""Avro encoding of the topics' records in the Confluent wire format."""

from pipeline.serde.avro import AvroDecoder, AvroEncoder, SerdeError
from pipeline.serde.records import (
    DetectedObjectRecord,
    DetectionsRecord,
    FrameRecord,
    StageTimings,
    detected_objects,
    detections_record,
    frame_record,
)
from pipeline.serde.registry import LocalSchemaIds, SchemaIds, UnknownSchemaError

__all__ = [
    "AvroDecoder",
    "AvroEncoder",
    "DetectedObjectRecord",
    "DetectionsRecord",
    "FrameRecord",
    "LocalSchemaIds",
    "SchemaIds",
    "SerdeError",
    "StageTimings",
    "UnknownSchemaError",
    "detected_objects",
    "detections_record",
    "frame_record",
]

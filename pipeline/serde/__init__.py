"""Avro encoding of the topics' records in the Confluent wire format."""

from pipeline.serde.avro import AvroDecoder, AvroEncoder, SerdeError
from pipeline.serde.records import DetectedObjectRecord, DetectionsRecord, FrameRecord, StageTimings
from pipeline.serde.registry import LocalSchemaIds, RegistrySchemaIds, SchemaIds, schema_ids_from

__all__ = [
    "AvroDecoder",
    "AvroEncoder",
    "DetectedObjectRecord",
    "DetectionsRecord",
    "FrameRecord",
    "LocalSchemaIds",
    "RegistrySchemaIds",
    "SchemaIds",
    "SerdeError",
    "StageTimings",
    "schema_ids_from",
]

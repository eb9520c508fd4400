"""Object detection: JPEG bytes in, typed Detections out, on a pluggable backend."""

from pipeline.inference.detections import Detections

__all__ = ["Detections"]

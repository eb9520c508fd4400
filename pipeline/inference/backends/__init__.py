"""Inference backends behind one interface; ``create_backend`` picks one from settings."""

from pipeline.inference.backends.base import Backend, BackendUnavailable
from pipeline.inference.backends.factory import create_backend

__all__ = ["Backend", "BackendUnavailable", "create_backend"]

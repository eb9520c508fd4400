"""Which exceptions are a user's problem to fix, shown as one line instead of a traceback."""

from __future__ import annotations

from connectors.cameras.config import CameraConfigError
from pipeline.config import SettingsError
from pipeline.inference.backends.base import BackendUnavailable
from pipeline.inference.model_files import ModelNotFound
from pipeline.kafka.admin import BrokerUnavailable
from pipeline.kafka.embedded import EmbeddedBrokerError

USER_ERRORS: tuple[type[BaseException], ...] = (
    SettingsError,
    CameraConfigError,
    BackendUnavailable,
    ModelNotFound,
    BrokerUnavailable,
    EmbeddedBrokerError,
    FileNotFoundError,
    ConnectionRefusedError,
)


def user_facing(exc: BaseException) -> str | None:
    """The message to print for a known failure; None for a bug (show the traceback)."""
    if isinstance(exc, USER_ERRORS):
        return str(exc)
    return None

"""One log format for every command."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str = "INFO", name: str = "vae") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s %(levelname)-7s {name} %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # librdkafka's own chatter arrives through confluent_kafka's loggers only on request.
    logging.getLogger("websockets").setLevel(logging.WARNING)

"""The Avro schemas of the topics, shipped as package data next to this file."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

FRAME = "frame"
DETECTIONS = "detections"
TRACKS = "tracks"
EVENTS = "events"
COUNTS = "counts"
RULES = "rules"
DEAD_LETTER = "dead_letter"


def load(name: str) -> dict[str, Any]:
    """The parsed JSON of ``schemas/<name>.avsc``."""
    text = resources.files(__name__).joinpath(f"{name}.avsc").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def earlier() -> list[dict[str, Any]]:
    """Earlier versions of the schemas (``schemas/earlier/<name>-<n>.avsc``): records their
    writers produced must still decode where no registry serves their ids."""
    folder = resources.files(__name__).joinpath("earlier")
    return [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.name.endswith(".avsc")
    ]


def names() -> list[str]:
    """Every schema shipped here."""
    return sorted(
        p.name.removesuffix(".avsc")
        for p in resources.files(__name__).iterdir()
        if p.name.endswith(".avsc")
    )

"""Events and their ids: the same input always gives the same event id, so a sink that
sees an event twice (at-least-once delivery, a replay) can keep it once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

# Fixed namespace for uuid5 event ids; changing it would change every id.
_NAMESPACE = uuid.UUID("6f1f7d4e-4a0b-5c8e-9a59-0e3c5e0b7a11")

KINDS = ("line_crossed", "zone_enter", "zone_exit", "loitering")
PHASES = ("", "start", "update", "end")


@dataclass(frozen=True)
class Sighting:
    """One object of one frame, as a track saw it: the event's "best frame" is one of these."""

    frame_id: int
    capture_ts_us: int
    score: float
    box: tuple[float, float, float, float]
    frame_partition: int = -1  # where the frame sits in vae.frames, when known
    frame_offset: int = -1


@dataclass(frozen=True, kw_only=True)
class Event:
    """One event; its ``event_id`` is derived from what produced it, never passed in."""

    stream_id: str
    rule: str
    kind: str
    phase: str = ""  # loitering: start, update or end; "" for one-shot events
    label: str
    class_id: int
    track_id: int
    direction: str = ""  # line_crossed: in or out; "" otherwise
    start_ts_us: int
    end_ts_us: int
    best: Sighting
    trigger_frame_id: int  # the frame whose arrival produced the event
    event_id: str = field(init=False)

    def __post_init__(self) -> None:
        identity = (self.stream_id, self.rule, self.kind, self.phase, self.track_id)
        object.__setattr__(self, "event_id", event_id(*identity, self.trigger_frame_id))

    @property
    def event_ts_us(self) -> int:
        """The event-time instant a count of this event falls in."""
        return self.start_ts_us


def event_id(
    stream_id: str, rule: str, kind: str, phase: str, track_id: int, trigger_frame_id: int
) -> str:
    """A deterministic id from what produced the event (not from when it was computed)."""
    name = f"{stream_id}\x1f{rule}\x1f{kind}\x1f{phase}\x1f{track_id}\x1f{trigger_frame_id}"
    return str(uuid.uuid5(_NAMESPACE, name))

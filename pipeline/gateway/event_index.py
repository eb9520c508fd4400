"""Recent events by id, so that GET /v1/events/{event_id}/snapshot.jpg and clip.mp4 find
the event's stream, its best frame's place in vae.frames, its times and its box.

Bounded (VAE_GATEWAY_EVENTS_INDEX ids) and least-recently-used: a lookup, or a newer record
of the same id, makes an id the most recent; past the bound the least recent goes, and its
media then answer 404 like an unknown id. pipeline.gateway.analytics_feed fills it from the
events topic, from what the topic still holds (at most the last ``size`` records of each
partition: older ones could not stay in the index anyway), then live, so a restarted
gateway finds recent events again. Only the event loop touches the index.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from pipeline.serde import EventRecord


@dataclass(frozen=True, slots=True)
class EventRef:
    """What an event's media need of it."""

    event_id: str
    stream_id: str
    frame_id: int
    frame_partition: int  # -1: unknown
    frame_offset: int  # -1: unknown
    start_ts_us: int
    end_ts_us: int
    box: tuple[float, float, float, float]
    label: str
    score: float


def event_ref(record: EventRecord) -> EventRef:
    return EventRef(
        event_id=record["event_id"],
        stream_id=record["stream_id"],
        frame_id=record["frame_id"],
        frame_partition=record["frame_partition"],
        frame_offset=record["frame_offset"],
        start_ts_us=record["start_ts_us"],
        end_ts_us=record["end_ts_us"],
        box=(record["x1"], record["y1"], record["x2"], record["y2"]),
        label=record["label"],
        score=record["score"],
    )


class EventIndex:
    """event_id -> EventRef, at most ``size`` of them, least recently used out first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._refs: OrderedDict[str, EventRef] = OrderedDict()

    def __len__(self) -> int:
        return len(self._refs)

    def add(self, ref: EventRef) -> None:
        if self.size <= 0:
            return
        self._refs[ref.event_id] = ref
        self._refs.move_to_end(ref.event_id)
        while len(self._refs) > self.size:
            self._refs.popitem(last=False)

    def get(self, event_id: str) -> EventRef | None:
        ref = self._refs.get(event_id)
        if ref is not None:
            self._refs.move_to_end(event_id)
        return ref

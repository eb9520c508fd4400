"""What the gateway knows of each stream: its latest frame (for viewers) and activity.

Bounded: at most ``capacity`` streams are kept; the least recently updated goes first.
Frames are kept by reference (the bytes object already received), never copied.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class StreamState:
    """The latest of one stream."""

    stream_id: str
    frame_id: int = -1
    frame_ts_us: int = 0
    width: int = 0
    height: int = 0
    image: bytes = b""
    frames: int = 0
    detections_ts_us: int = 0
    detections_frame_id: int = -1
    detections: int = 0

    def summary(self) -> dict[str, int | str]:
        return {
            "stream_id": self.stream_id,
            "frame_id": self.frame_id,
            "frame_ts_us": self.frame_ts_us,
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "detections_ts_us": self.detections_ts_us,
            "detections_frame_id": self.detections_frame_id,
            "detections": self.detections,
        }


class StreamRegistry:
    """Latest frame and counters per stream, LRU-bounded."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._streams: OrderedDict[str, StreamState] = OrderedDict()

    def _state(self, stream_id: str) -> StreamState:
        state = self._streams.get(stream_id)
        if state is None:
            state = StreamState(stream_id)
            self._streams[stream_id] = state
            while len(self._streams) > self.capacity:
                self._streams.popitem(last=False)
        else:
            self._streams.move_to_end(stream_id)
        return state

    def frame(
        self, stream_id: str, frame_id: int, ts_us: int, width: int, height: int, image: bytes
    ) -> None:
        if self.capacity == 0:
            return
        state = self._state(stream_id)
        state.frame_id, state.frame_ts_us, state.image = frame_id, ts_us, image
        state.width, state.height = width, height
        state.frames += 1

    def detections(self, stream_id: str, frame_id: int, ts_us: int) -> None:
        if self.capacity == 0:
            return
        state = self._state(stream_id)
        state.detections_ts_us, state.detections_frame_id = ts_us, frame_id
        state.detections += 1

    def get(self, stream_id: str) -> StreamState | None:
        return self._streams.get(stream_id)

    def summaries(self) -> list[dict[str, int | str]]:
        return [s.summary() for s in sorted(self._streams.values(), key=lambda s: s.stream_id)]

    def __len__(self) -> int:
        return len(self._streams)


def merge_summaries(summaries: list[dict[str, int | str]]) -> list[dict[str, int | str]]:
    """One summary per stream from several gateway processes' (VAE_GATEWAY_PROCESSES): the
    frame fields of the process with the newest frame, frames received added up, the
    detection fields of the newest detections (every process follows all of them)."""
    merged: dict[str, dict[str, int | str]] = {}
    for summary in summaries:
        stream_id = str(summary["stream_id"])
        held = merged.get(stream_id)
        if held is None:
            merged[stream_id] = dict(summary)
            continue
        frames = int(held["frames"]) + int(summary["frames"])
        if int(summary["frame_ts_us"]) > int(held["frame_ts_us"]):
            for field in ("frame_id", "frame_ts_us", "width", "height"):
                held[field] = summary[field]
        if int(summary["detections_ts_us"]) > int(held["detections_ts_us"]):
            for field in ("detections_ts_us", "detections_frame_id"):
                held[field] = summary[field]
        held["detections"] = max(int(held["detections"]), int(summary["detections"]))
        held["frames"] = frames
    return [merged[k] for k in sorted(merged)]

"""Motion gating: run the model on a stream's frame only when something in it moved.

Per stream, each JPEG is decoded small and grey (libjpeg-turbo's DCT scaling: 1/2, 1/4
or 1/8 of the pixels for a fraction of the full decode), averaged over 2x2 cells (which
halves sensor noise), and compared with a reference image: the frame the model last saw,
blended while frames are gated with a running average (so noise averages out and slow
light changes are absorbed). A cell changed when it differs from the reference by more
than ``threshold`` grey levels; the frame moved when at least ``min_area`` of its cells
changed. A frame that did not move is gated: its Detections carry the objects of the
frame last inferred, which it looks like. At least one frame every ``keyframe_s``
seconds of the stream is inferred whatever the motion, so objects that stand still stay
fresh.

Pure (no threads, no clocks: time is the frame's capture time): the worker holds one
``MotionGate`` and asks it about each frame in stream order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt
import simplejpeg

from pipeline.config import WorkerSettings

T = TypeVar("T")

Grey = npt.NDArray[np.float32]


@dataclass(frozen=True)
class MotionParams:
    """How the change detector looks at frames (the worker section's gate_* settings)."""

    width: int = 160  # the thumbnail: the smallest DCT scale at least this wide
    threshold: float = 20.0  # grey levels (0-255) a cell must change by
    min_area: float = 0.002  # share of the cells that must change
    alpha: float = 0.05  # running-average weight of a gated frame in the reference
    keyframe_s: float = 2.0  # at most this long between inferred frames of a stream

    @classmethod
    def of(cls, worker: WorkerSettings) -> MotionParams:
        """The worker section's gate_* settings and keyframe_s."""
        return cls(
            width=worker.gate_width,
            threshold=worker.gate_threshold,
            min_area=worker.gate_min_area,
            alpha=worker.gate_alpha,
            keyframe_s=worker.keyframe_s,
        )


def thumbnail(jpeg: bytes, min_width: int) -> Grey | None:
    """The frame in grey at the smallest DCT scale at least ``min_width`` wide, averaged
    over 2x2 cells; None when the bytes do not decode (the full decode reports why)."""
    try:
        grey = simplejpeg.decode_jpeg(jpeg, colorspace="GRAY", min_width=max(1, min_width))
    except ValueError:
        return None
    plane = np.asarray(grey, dtype=np.float32)[:, :, 0]
    h, w = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    if h == 0 or w == 0:
        return plane
    cells: Grey = plane[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return cells


def changed_share(frame: Grey, reference: Grey, threshold: float) -> float:
    """Share of cells that differ from the reference by more than ``threshold``."""
    return float(np.count_nonzero(np.abs(frame - reference) > threshold)) / frame.size


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a frame goes to the model, and why."""

    infer: bool
    reason: str  # first | motion | keyframe | still | undecodable | off
    changed: float = 0.0  # share of cells changed (0 when not measured)


@dataclass(slots=True)
class _StreamState:
    partition: int
    reference: Grey
    inferred_at_s: float


class MotionGate:
    """The gating state of every stream one worker owns."""

    def __init__(self, params: MotionParams, enabled: bool = True) -> None:
        self.params = params
        self.enabled = enabled
        self._streams: dict[str, _StreamState] = {}
        self._lock = threading.Lock()  # forget() runs on the consumer's thread

    def decide(self, stream_id: str, partition: int, frame: Grey | None, ts_s: float) -> Decision:
        """Infer this frame (its ``thumbnail``), or carry the last inferred frame's objects
        to it. Called for each stream's frames in order."""
        if not self.enabled:
            return Decision(True, "off")
        if frame is None:
            return Decision(True, "undecodable")
        with self._lock:
            state = self._streams.get(stream_id)
            if (
                state is None
                or state.partition != partition
                or state.reference.shape != frame.shape
            ):
                self._streams[stream_id] = _StreamState(partition, frame, ts_s)
                return Decision(True, "first")
            changed = changed_share(frame, state.reference, self.params.threshold)
            if changed >= self.params.min_area:
                reason = "motion"
            elif ts_s - state.inferred_at_s >= self.params.keyframe_s or ts_s < state.inferred_at_s:
                reason = "keyframe"  # (or the stream's clock went back: start again)
            else:
                state.reference += self.params.alpha * (frame - state.reference)
                return Decision(False, "still", changed)
            state.reference = frame
            state.inferred_at_s = ts_s
            return Decision(True, reason, changed)

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop the state of streams on these partitions (they moved to another worker, or
        came back from one: their next frame is inferred and starts a new reference)."""
        gone = set(partitions)
        with self._lock:
            for stream_id in [s for s, st in self._streams.items() if st.partition in gone]:
                del self._streams[stream_id]

    def __len__(self) -> int:
        return len(self._streams)


class LastInferred(Generic[T]):
    """Per stream, what its last inferred frame found: what a gated frame carries."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, T]] = {}
        self._lock = threading.Lock()

    def put(self, stream_id: str, partition: int, value: T) -> None:
        with self._lock:
            self._last[stream_id] = (partition, value)

    def get(self, stream_id: str, default: T) -> T:
        with self._lock:
            found = self._last.get(stream_id)
        return default if found is None else found[1]

    def forget(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        with self._lock:
            for stream_id in [s for s, (p, _) in self._last.items() if p in gone]:
                del self._last[stream_id]


def stream_group(stream_id: str) -> str:
    """The metrics' label for a stream: its id up to the first '-', '_', '/' or ':' (so
    ``lobby-3`` counts under ``lobby``), bounding the label's values to the groups."""
    for index, char in enumerate(stream_id):
        if char in "-_/:":
            return stream_id[:index] or "-"
    return stream_id or "-"

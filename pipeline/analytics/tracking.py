"""ByteTrack (Roboflow's `trackers`) per stream and class, in event time.

ByteTrack matches boxes by overlap whatever their class, so the car and the truck a
detector finds on one vehicle would trade a track between them; one tracker per class
keeps a track to one class. Track ids are unique within the stream (allocated here in the
order tracks are confirmed). An object whose track is not yet confirmed (seen in
``confirm_frames`` frames in a row) gets track id -1 and is never counted. The tracker's
state lives in memory only: after a failover a stream's tracker starts afresh (see README).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

UNCONFIRMED = -1


@dataclass(frozen=True)
class Detected:
    class_id: int
    label: str
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels


@dataclass(frozen=True)
class Tracked:
    detected: Detected
    track_id: int  # UNCONFIRMED (-1) until the tracker confirms the track


@dataclass(frozen=True)
class TrackerSettings:
    confirm_frames: int = 3
    lost_s: float = 1.0  # how long ByteTrack keeps an unseen track for re-association
    frame_rate: float = 10.0  # nominal rate; only scales the first step
    activation_score: float = 0.4
    high_score: float = 0.5
    match_iou: float = 0.1


class StreamTracker:
    def __init__(self, settings: TrackerSettings) -> None:
        self._settings = settings
        self._trackers: dict[int, ByteTrackTracker] = {}
        self._ids: dict[tuple[int, int], int] = {}  # (class, the tracker's id) -> stream's id

    def _tracker(self, class_id: int) -> ByteTrackTracker:
        tracker = self._trackers.get(class_id)
        if tracker is None:
            s = self._settings
            tracker = self._trackers[class_id] = ByteTrackTracker(
                lost_track_buffer=max(1, round(s.lost_s * 30)),
                frame_rate=s.frame_rate,
                track_activation_threshold=s.activation_score,
                minimum_consecutive_frames=s.confirm_frames,
                minimum_iou_threshold=s.match_iou,
                high_conf_det_threshold=s.high_score,
            )
        return tracker

    def update(self, capture_ts_us: int, objects: list[Detected]) -> list[Tracked]:
        """Track one frame's objects; returned in input order, each with its track id."""
        ids = [UNCONFIRMED] * len(objects)
        by_class: dict[int, list[int]] = {}
        for i, o in enumerate(objects):
            by_class.setdefault(o.class_id, []).append(i)
        # Every class seen so far is updated, with no boxes when absent, so its tracks age.
        for class_id in sorted(set(self._trackers) | set(by_class)):
            indices = by_class.get(class_id, [])
            local = self._update_one(self._tracker(class_id), capture_ts_us,
                                     [objects[i] for i in indices])  # fmt: skip
            for i, track in zip(indices, local, strict=True):
                if track != UNCONFIRMED:
                    key = (class_id, track)
                    if key not in self._ids:
                        self._ids[key] = len(self._ids)
                    ids[i] = self._ids[key]
        return [Tracked(o, t) for o, t in zip(objects, ids, strict=True)]

    @staticmethod
    def _update_one(
        tracker: ByteTrackTracker, capture_ts_us: int, objects: list[Detected]
    ) -> list[int]:
        if objects:
            detections = sv.Detections(
                xyxy=np.array([o.box for o in objects], dtype=np.float32),
                confidence=np.array([o.score for o in objects], dtype=np.float32),
                class_id=np.array([o.class_id for o in objects], dtype=int),
                data={"index": np.arange(len(objects))},
            )
        else:
            detections = sv.Detections.empty()
            detections.data = {"index": np.array([], dtype=int)}
        with warnings.catch_warnings():
            # A repeated or backwards capture time is skipped by the tracker, which warns.
            warnings.simplefilter("ignore", UserWarning)
            result = tracker.update(detections, timestamp=capture_ts_us / 1e6)
        ids = [UNCONFIRMED] * len(objects)
        if len(result) and result.tracker_id is not None and "index" in result.data:
            for index, track_id in zip(result.data["index"], result.tracker_id, strict=True):
                ids[int(index)] = int(track_id)
        return ids

"""vae.frames as the recording: an event's best frame and its stream's frames around it,
read back from the partition and offset the event names. Blocking: runs on a media thread.

No separate recorder keeps anything: what the frames topic still holds is what exists, so
the topic's retention (VAE_TOPICS_FRAMES_RETENTION_MS) bounds how far back snapshots and
clips go. A frame past it is answered 410, whether the broker already deleted it (the
partition starts after it) or not yet (Kafka deletes whole segments, late; the embedded
broker never does): the frame record's own timestamp says how old it is.

The clip's first frame is found by walking back from the best frame in growing steps (the
offsets of a stream's frames interleave with the other streams' of its partition, and
brokers do not all find offsets by time: Tansu answers offset 0 for any time); the walk and
the read forward stop at a stream frame outside the clip's span, at the partition's start
or end, or at a record written more than SLACK_MS beyond the span (by record time: a stream
that stopped sending does not make the read run to the end of a busy partition).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.gateway.event_index import EventRef
from pipeline.kafka.partition_log import OffsetOutOfRange, PartitionLog, ReadTimeout
from pipeline.protocol.messages import Refused
from pipeline.serde import AvroDecoder, FrameRecord, SerdeError

ANCHOR_WAIT_S = 3.0  # a broker that holds the offset answers well within this
SLACK_MS = 10_000  # how much later than its capture time a frame may have been written
FIRST_STEP, MAX_STEP = 64, 4096  # records per step of the walk back


class Unavailable(Refused):
    """The media cannot be made: the HTTP status answered, besides the code and why."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code, message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Anchor:
    """The event's best frame as stored."""

    offset: int
    timestamp_ms: int
    frame: FrameRecord


def clip_window(
    ref: EventRef, best_us: int, before_s: float, after_s: float, max_s: float
) -> tuple[int, int]:
    """The clip's span of capture time, [t0, t1]: ``before_s`` before the event's start to
    ``after_s`` after its end, cut to ``max_s`` around the best frame when longer."""
    t0 = ref.start_ts_us - round(before_s * 1e6)
    t1 = ref.end_ts_us + round(after_s * 1e6)
    span = round(max_s * 1e6)
    if t1 - t0 > span:
        t0 = max(t0, min(best_us - span // 2, t1 - span))
        t1 = t0 + span
    return t0, t1


def read_best_frame(
    log: PartitionLog,
    decoder: AvroDecoder[FrameRecord],
    ref: EventRef,
    *,
    retention_ms: int,
    deadline: float,
) -> Anchor:
    """The event's best frame, or Unavailable saying why not (404 no position, 410 gone)."""
    where = f"offset {ref.frame_offset} of {log.topic} partition {ref.frame_partition}"
    if ref.frame_partition < 0 or ref.frame_offset < 0:
        raise Unavailable(
            404,
            "no_frame",
            f"event {ref.event_id} does not say where its frame is in {log.topic} (an event "
            "written by an analytics older than this gateway)",
        )
    low, high = log.bounds()
    if ref.frame_offset < low:
        raise Unavailable(
            410,
            "past_retention",
            f"event {ref.event_id}: its frame ({where}) is past the topic's retention: the "
            f"partition now starts at offset {low}",
        )
    found = None
    try:
        wait = min(deadline, time.monotonic() + ANCHOR_WAIT_S)
        found = next(iter(log.read(ref.frame_offset, wait, stop=ref.frame_offset + 1)), None)
    except OffsetOutOfRange:
        pass
    except ReadTimeout:
        if time.monotonic() >= deadline or ref.frame_offset < high:
            raise
    frame = decoder.decode(found.value) if found is not None else None
    if found is None or frame is None or found.offset != ref.frame_offset:
        raise Unavailable(
            410,
            "frame_gone",
            f"event {ref.event_id}: {log.topic} no longer holds its frame ({where}): the topic "
            "was deleted and created again since",
        )
    if frame["stream_id"] != ref.stream_id or frame["frame_id"] != ref.frame_id:
        raise Unavailable(
            410,
            "frame_gone",
            f"event {ref.event_id}: {where} is now another frame (frame {frame['frame_id']} "
            f"of {frame['stream_id']!r}): the topic was deleted and created again since",
        )
    age_ms = time.time() * 1000 - found.timestamp_ms
    if found.timestamp_ms > 0 and age_ms > retention_ms:  # 0 or less: a record without time
        raise Unavailable(
            410,
            "past_retention",
            f"event {ref.event_id}: its frame was written {age_ms / 1000:.0f} s ago, past the "
            f"retention of {log.topic} ({retention_ms} ms, VAE_TOPICS_FRAMES_RETENTION_MS)",
        )
    return Anchor(found.offset, found.timestamp_ms, frame)


def clip_frames(
    log: PartitionLog,
    decoder: AvroDecoder[FrameRecord],
    anchor: Anchor,
    window: tuple[int, int],
    *,
    max_frames: int,
    deadline: float,
) -> Iterator[tuple[int, bytes]]:
    """(capture_ts_us, JPEG) of the anchor's stream with capture times in ``window``, in
    the partition's order, at most ``max_frames`` (the first ones); other streams' frames
    of the partition are left out. ReadTimeout past ``deadline``."""
    stream_id = anchor.frame["stream_id"]
    key = stream_id.encode()
    t0, t1 = window
    best_us = anchor.frame["capture_ts_us"]

    def frame_of(key_: bytes | None, value: bytes) -> FrameRecord | None:
        if key_ != key:
            return None
        try:
            frame = decoder.decode(value)
        except SerdeError:  # a record no worker could read either (it went to dead letters)
            return None
        return frame if frame["stream_id"] == stream_id else None

    timed = anchor.timestamp_ms > 0  # records without a time: no cut-off by record time

    # Back from the best frame to the first frame of the span.
    first = anchor.offset
    if best_us >= t0:
        floor_ms = anchor.timestamp_ms - (best_us - t0) // 1000 - SLACK_MS if timed else 0
        low, _ = log.bounds()
        stop, step = anchor.offset, FIRST_STEP
        while stop > low:
            start = max(low, stop - step)
            oldest_ms: int | None = None
            seen: list[tuple[int, int]] = []  # (offset, capture time) of the stream's frames
            for record in log.read(start, deadline, stop):
                oldest_ms = record.timestamp_ms if oldest_ms is None else oldest_ms
                frame = frame_of(record.key, record.value)
                if frame is not None:
                    seen.append((record.offset, frame["capture_ts_us"]))
            before = [offset for offset, capture in seen if capture < t0]
            inside = [offset for offset, capture in seen if capture >= t0]
            if before:
                first = min((o for o in inside if o > max(before)), default=first)
                break
            first = min(inside, default=first)
            if oldest_ms is None or (timed and oldest_ms < floor_ms):
                break  # any earlier frame of the stream was written before the span
            stop, step = start, min(step * 2, MAX_STEP)

    # Forward through the span.
    ceiling_ms = anchor.timestamp_ms + max(0, t1 - best_us) // 1000 + SLACK_MS
    count = 0
    for record in log.read(first, deadline):
        if timed and record.timestamp_ms > ceiling_ms:
            return
        frame = frame_of(record.key, record.value)
        if frame is None or frame["capture_ts_us"] < t0:
            continue
        if frame["capture_ts_us"] > t1:
            return
        yield frame["capture_ts_us"], frame["image"]
        count += 1
        if count >= max_frames:
            return

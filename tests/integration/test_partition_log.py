"""Reading vae.frames back on the real broker: a partition read like a file up to its end
(where the embedded broker's high watermark lags), an event's best frame and why it may be
gone, and a stream's frames of a span among another stream's on the same partition."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import Producer

from pipeline.gateway.event_index import EventRef
from pipeline.gateway.recording import Unavailable, clip_frames, read_best_frame
from pipeline.kafka.partition_log import PartitionLog, ReadTimeout
from pipeline.serde import LocalSchemaIds, frame_record
from pipeline.topics import engine_topics
from tests.conftest import Stack

pytestmark = pytest.mark.integration

FRAMES = 300  # of each of two streams, interleaved on partition 0
T0 = 1_000_000_000
STEP_US = 100_000
HOUR_MS = 3_600_000


def capture(i: int) -> int:
    return T0 + i * STEP_US


@pytest.fixture
def written(stack: Stack) -> dict[tuple[str, int], int]:
    """Frames of "a" and "b" (same capture times) on partition 0, in multi-record batches
    as the gateway's producer writes them; (stream, frame id) -> offset."""
    writer = engine_topics(stack.settings.topics).frames.writer(LocalSchemaIds())
    producer = Producer(
        {"bootstrap.servers": stack.bootstrap, "enable.idempotence": True, "linger.ms": 20}
    )
    offsets: dict[tuple[str, int], int] = {}

    def delivered(key: tuple[str, int]) -> Any:
        def report(error: Any, message: Any) -> None:
            assert error is None, error
            offsets[key] = message.offset()

        return report

    for i in range(FRAMES):
        for stream in ("a", "b"):
            record = frame_record(
                stream_id=stream,
                frame_id=i,
                capture_ts_us=capture(i),
                gateway_ts_us=capture(i),
                width=2,
                height=2,
                image=f"{stream}{i}".encode(),
            )
            producer.produce(
                writer.topic,
                writer.value(record),
                writer.key(record),
                partition=0,
                on_delivery=delivered((stream, i)),
            )
    assert producer.flush(30) == 0
    assert len(offsets) == 2 * FRAMES
    return offsets


def ref(offsets: dict[tuple[str, int], int], i: int, **changes: Any) -> EventRef:
    fields: dict[str, Any] = {
        "event_id": f"e{i}",
        "stream_id": "a",
        "frame_id": i,
        "frame_partition": 0,
        "frame_offset": offsets[("a", i)],
        "start_ts_us": capture(i),
        "end_ts_us": capture(i),
        "box": (0.0, 0.0, 1.0, 1.0),
        "label": "car",
        "score": 0.9,
    }
    fields.update(changes)
    return EventRef(**fields)


def test_a_partition_reads_to_its_end_and_an_events_frames_are_found(
    stack: Stack, written: dict[tuple[str, int], int]
) -> None:
    decoder = stack_decoder(stack)
    deadline = time.monotonic() + 60
    with PartitionLog(stack.settings.kafka, stack.settings.topics.frames, 0) as log:
        everything = list(log.read(0, deadline))
        assert [r.offset for r in everything] == list(range(2 * FRAMES))
        assert log.bounds()[0] == 0

        # The best frame, as stored.
        anchor = read_best_frame(
            log, decoder, ref(written, 200), retention_ms=HOUR_MS, deadline=deadline
        )
        assert anchor.offset == written[("a", 200)] and anchor.frame["image"] == b"a200"

        # Frames 150..220 of "a": a walk back over 100 records of both streams (two steps),
        # then forward; none of "b" although its capture times are the same.
        span = (capture(150), capture(220))
        got = list(clip_frames(log, decoder, anchor, span, max_frames=1000, deadline=deadline))
        assert got == [(capture(i), f"a{i}".encode()) for i in range(150, 221)]
        first_ten = clip_frames(log, decoder, anchor, span, max_frames=10, deadline=deadline)
        assert [c for c, _ in first_ten] == [capture(i) for i in range(150, 160)]
        # A span reaching past the stream's first and last frames ends at the partition's.
        wide = (capture(-50), capture(FRAMES + 50))
        all_a = list(clip_frames(log, decoder, anchor, wide, max_frames=1000, deadline=deadline))
        assert len(all_a) == FRAMES

        with pytest.raises(ReadTimeout):
            list(log.read(0, time.monotonic() - 1))


GONE = [
    ({"frame_partition": -1, "frame_offset": -1}, HOUR_MS, 404, "no_frame"),
    ({"frame_id": 7}, HOUR_MS, 410, "frame_gone"),  # the position holds another frame
    ({"frame_offset": 1_000_000}, HOUR_MS, 410, "frame_gone"),  # beyond the partition's end
    ({}, 0, 410, "past_retention"),  # older than the retention, whether deleted or not
]


def test_a_frame_no_longer_where_the_event_says_is_answered_with_why(
    stack: Stack, written: dict[tuple[str, int], int]
) -> None:
    answers = []
    with PartitionLog(stack.settings.kafka, stack.settings.topics.frames, 0) as log:
        for changes, retention_ms, _, _ in GONE:
            with pytest.raises(Unavailable) as caught:
                read_best_frame(
                    log,
                    stack_decoder(stack),
                    ref(written, 200, **changes),
                    retention_ms=retention_ms,
                    deadline=time.monotonic() + 30,
                )
            answers.append((caught.value.status, caught.value.code, caught.value.message))
    assert [(status, code) for status, code, _ in answers] == [(s, c) for *_, s, c in GONE]
    assert "VAE_TOPICS_FRAMES_RETENTION_MS" in answers[-1][2]


def stack_decoder(stack: Stack) -> Any:
    return engine_topics(stack.settings.topics).frames.reader(LocalSchemaIds())

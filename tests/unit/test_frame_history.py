"""Recent frames for the viewer: only watched streams, bounded per stream and in bytes."""

from __future__ import annotations

from pipeline.gateway.fanout import FanoutHub, Subscriber
from pipeline.gateway.frame_history import FrameHistory
from pipeline.protocol.routes import BadRequest, Http, route


def jpeg(size: int, tag: int = 0) -> bytes:
    return bytes([tag % 256]) * size


def test_frames_are_found_by_id_with_their_time() -> None:
    history = FrameHistory(depth=4, max_bytes=10_000)
    for frame_id in range(3):
        history.add("cam", frame_id, 1000 + frame_id, jpeg(10, frame_id))
    held = history.get("cam", 1)
    assert held is not None
    assert (held.frame_id, held.ts_us, held.image) == (1, 1001, jpeg(10, 1))
    assert history.get("cam", 7) is None
    assert history.get("other", 1) is None
    assert history.bytes == 30 and len(history) == 3


def test_each_stream_keeps_its_last_depth_frames() -> None:
    history = FrameHistory(depth=3, max_bytes=10_000)
    for frame_id in range(10):
        history.add("a", frame_id, frame_id, jpeg(10))
        history.add("b", frame_id, frame_id, jpeg(20))
    assert [f for f in range(10) if history.get("a", f)] == [7, 8, 9]
    assert [f for f in range(10) if history.get("b", f)] == [7, 8, 9]
    assert history.bytes == 3 * 10 + 3 * 20


def test_byte_budget_evicts_the_oldest_frame_of_any_stream() -> None:
    history = FrameHistory(depth=100, max_bytes=100)
    history.add("old", 0, 0, jpeg(40))
    history.add("new", 0, 1, jpeg(40))
    history.add("new", 1, 2, jpeg(40))  # 120 bytes: the oldest frame of all goes
    assert history.get("old", 0) is None
    assert history.get("new", 0) is not None and history.get("new", 1) is not None
    assert history.bytes == 80 and history.streams() == 1
    history.add("new", 2, 3, jpeg(90))  # needs both of the others' room
    assert [f for f in range(3) if history.get("new", f)] == [2]
    assert history.bytes == 90


def test_a_frame_larger_than_the_budget_is_not_kept() -> None:
    history = FrameHistory(depth=4, max_bytes=50)
    history.add("cam", 0, 0, jpeg(30))
    history.add("cam", 1, 1, jpeg(51))
    assert history.get("cam", 1) is None
    assert history.get("cam", 0) is not None and history.bytes == 30


def test_only_streams_a_subscriber_names_are_kept_and_dropped_when_unwatched() -> None:
    hub = FanoutHub()
    history = FrameHistory(depth=4, max_bytes=10_000, watched=hub.watches)
    everything = Subscriber(None, 4)  # an API client following `*` needs no frames
    hub.add(everything)
    history.add("cam", 0, 0, jpeg(10))
    assert history.get("cam", 0) is None
    viewer = Subscriber(frozenset({"cam"}), 4)
    hub.add(viewer)
    history.add("cam", 1, 1, jpeg(10))
    assert history.get("cam", 1) is not None
    hub.remove(viewer)
    history.add("cam", 2, 2, jpeg(10))  # nobody watches any more: its frames go
    assert len(history) == 0 and history.bytes == 0


def test_reused_frame_ids_answer_the_newest_frame() -> None:
    history = FrameHistory(depth=8, max_bytes=10_000)
    history.add("webcam", 0, 100, jpeg(10, 1))
    history.add("webcam", 0, 200, jpeg(10, 2))  # a browser camera reconnected: ids restart
    held = history.get("webcam", 0)
    assert held is not None and held.ts_us == 200


def test_disabled_history_keeps_nothing() -> None:
    for history in (FrameHistory(0, 10_000), FrameHistory(8, 0)):
        history.add("cam", 0, 0, jpeg(10))
        assert history.get("cam", 0) is None and history.bytes == 0


def test_frame_routes() -> None:
    assert route("/v1/streams/cam-1/frames/42.jpg") == Http("frame", stream_id="cam-1", frame_id=42)
    assert route("/v1/streams/cam%2D1/frames/0.jpg") == Http("frame", stream_id="cam-1", frame_id=0)
    for bad in (
        "/v1/streams/cam/frames/-1.jpg",
        "/v1/streams/cam/frames/x.jpg",
        "/v1/streams/cam/frames/1.png",
        "/v1/streams/cam/frames/².jpg",
        "/v1/streams/cam/frames/" + "9" * 20 + ".jpg",
        "/v1/streams/a%20b/frames/1.jpg",
    ):
        target = route(bad)
        assert isinstance(target, BadRequest) and target.status == 400 and not target.websocket

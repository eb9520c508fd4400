"""What sibling gateway processes share (pipeline/gateway/peers.py), over real Unix sockets
in one event loop: watched streams, held and latest frames, the stream list; a sibling
that is gone counts as holding nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pipeline.gateway.peers import Holdings, PeerFrame, Peers
from pipeline.gateway.streams import merge_summaries


class Process:
    """One gateway process's holdings, as plain dicts the test fills in."""

    def __init__(self) -> None:
        self.frames: dict[tuple[str, int], PeerFrame] = {}
        self.latest: dict[str, PeerFrame] = {}
        self.streams: list[dict[str, Any]] = []
        self.watched: list[str] = []

    def holdings(self) -> Holdings:
        return Holdings(
            lambda s, f: self.frames.get((s, f)),
            self.latest.get,
            lambda: self.streams,
            lambda: self.watched,
        )


def summary(stream_id: str, frame_ts_us: int, frames: int, det_ts_us: int) -> dict[str, Any]:
    return {
        "stream_id": stream_id,
        "frame_id": frame_ts_us // 10,
        "frame_ts_us": frame_ts_us,
        "width": 640,
        "height": 360,
        "frames": frames,
        "detections_ts_us": det_ts_us,
        "detections_frame_id": det_ts_us // 10,
        "detections": det_ts_us // 100,
    }


async def wait_until(condition: Any) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not condition():
        assert loop.time() < deadline, "not within 10 s"
        await asyncio.sleep(0.01)


async def test_siblings_share_watches_frames_and_streams(tmp_path: Path) -> None:
    sockets = [tmp_path / f"peer-{i}.sock" for i in range(3)]
    processes = [Process() for _ in sockets]
    peers = [Peers(i, sockets, p.holdings()) for i, p in enumerate(processes)]
    for peer in peers:
        await peer.start()
    try:
        async with asyncio.timeout(10):
            for peer in peers:
                await peer.connected()
        # Process 0's subscribers name cam-a: the others learn it (and forget it).
        processes[0].watched = ["cam-a"]
        peers[0].watched_changed()
        await wait_until(lambda: peers[1].watches("cam-a") and peers[2].watches("cam-a"))
        assert not peers[0].watches("cam-a")  # its own subscribers are not its siblings'
        processes[0].watched = []
        peers[0].watched_changed()
        await wait_until(lambda: not peers[1].watches("cam-a"))

        # A frame held by process 2 is found from process 0; one nobody holds is None.
        processes[2].frames[("cam-a", 7)] = PeerFrame(7, 1_000, b"\xff\xd8 seven")
        assert await peers[0].frame("cam-a", 7) == PeerFrame(7, 1_000, b"\xff\xd8 seven")
        assert await peers[0].frame("cam-a", 8) is None
        # The latest frame: the newest among the siblings (a camera that moved process).
        processes[1].latest["cam-a"] = PeerFrame(3, 500, b"old")
        processes[2].latest["cam-a"] = PeerFrame(9, 900, b"new")
        assert await peers[0].latest("cam-a") == PeerFrame(9, 900, b"new")
        # The stream list: every sibling's streams.
        processes[1].streams = [summary("cam-a", 500, 4, 800)]
        processes[2].streams = [summary("cam-a", 900, 2, 700), summary("cam-b", 100, 1, 0)]
        listed = await peers[0].streams()
        assert sorted(s["stream_id"] for s in listed) == ["cam-a", "cam-a", "cam-b"]

        # A sibling that stops: its watches are forgotten and it holds nothing any more.
        processes[2].watched = ["cam-z"]
        peers[2].watched_changed()
        await wait_until(lambda: peers[0].watches("cam-z"))
        await peers[2].stop()
        await wait_until(lambda: not peers[0].watches("cam-z"))
        assert await peers[0].frame("cam-a", 7) is None
        assert await peers[0].latest("cam-a") == PeerFrame(3, 500, b"old")
    finally:
        for peer in peers:
            await peer.stop()


def test_merged_stream_summaries_take_the_newest_frame_and_add_up_frames() -> None:
    merged = merge_summaries(
        [
            summary("cam-b", 100, 1, 0),
            summary("cam-a", 500, 4, 800),
            summary("cam-a", 900, 2, 700),
        ]
    )
    assert [s["stream_id"] for s in merged] == ["cam-a", "cam-b"]
    cam_a = merged[0]
    assert (cam_a["frame_ts_us"], cam_a["frame_id"], cam_a["frames"]) == (900, 90, 6)
    assert (cam_a["detections_ts_us"], cam_a["detections_frame_id"]) == (800, 80)
    assert cam_a["detections"] == 8

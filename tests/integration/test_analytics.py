"""vae analytics end to end: real broker, real model, real pixels.

A clip made from dog.jpg's car drives over a line and into and out of a zone a known number
of times; gateway → worker → analytics; the events and the windowed counts on the topics
come out exactly.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from websockets.asyncio.client import connect

from client import IngestClient
from pipeline.analytics.convert import frame_in
from pipeline.analytics.stream import StreamAnalytics
from pipeline.protocol.rules import parse_rules
from pipeline.serde import LocalSchemaIds
from pipeline.topics import engine_topics
from tests.analytics_clip import RULES_YAML, Clip, make_clip, rules_file, with_blank_end
from tests.conftest import AUTH, Stack, authed, ws_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXPECTED_EVENTS = [
    ("line_crossed", "in"),
    ("zone_enter", ""),
    ("zone_exit", ""),
    ("line_crossed", "out"),
    ("line_crossed", "in"),
    ("zone_enter", ""),
    ("zone_exit", ""),  # the track is lost after the clip ends inside the zone
]


def get_text(url: str) -> str:
    with urllib.request.urlopen(authed(url), timeout=10) as r:
        return str(r.read().decode())


def get_json(url: str) -> Any:
    with urllib.request.urlopen(authed(url), timeout=10) as r:
        return json.loads(r.read())


async def push_clip(url: str, stream_id: str, frames: list[bytes], ts: list[int]) -> None:
    async with IngestClient(url, stream_id, ack=True) as cam:
        for frame_id, (jpeg, capture) in enumerate(zip(frames, ts, strict=True)):
            await cam.send(jpeg, frame_id, capture_ts_us=capture)
            ack = await cam.receive()
            assert ack.frame_id == frame_id


class TopicReader:
    """Reads whole topics from their start (assigned partitions: no group join to wait)."""

    def __init__(self, stack: Stack) -> None:
        self.topics = engine_topics(stack.settings.topics)
        self.consumer = Consumer(
            {
                "bootstrap.servers": stack.bootstrap,
                "group.id": f"test-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        names = (self.topics.events.name, self.topics.counts.name, self.topics.tracks.name)
        self.consumer.assign(
            [TopicPartition(n, p, -2) for n in names for p in range(self.topics.events.partitions)]
        )
        self.events: list[dict[str, Any]] = []
        self.counts: list[dict[str, Any]] = []
        self.tracks = 0
        self._events = self.topics.events.reader(LocalSchemaIds())
        self._counts = self.topics.counts.reader(LocalSchemaIds())

    def poll_until(self, done: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            message = self.consumer.poll(0.5)
            if message is None or message.error():
                continue
            if message.topic() == self.topics.events.name:
                self.events.append(dict(self._events.decode(message.value())))
            elif message.topic() == self.topics.tracks.name:
                self.tracks += 1
            else:
                self.counts.append(dict(self._counts.decode(message.value())))

    def read_clip(self, clip: Clip, timeout: float = 120) -> dict[str, int]:
        """Reads until every event of the clip and its totals are in; the totals expected."""
        expected = {"in": clip.crossed_in, "out": clip.crossed_out, "entries": clip.zone_entries}
        self.poll_until(
            lambda: (
                len(self.events) >= len(EXPECTED_EVENTS)
                and totals(self.latest_counts()) == expected
            ),
            timeout,
        )
        return expected

    def latest_counts(self) -> dict[tuple[int, str, str], dict[str, Any]]:
        """Each window's last revision, by (window start, rule, label)."""
        latest: dict[tuple[int, str, str], dict[str, Any]] = {}
        for c in self.counts:
            key = (c["window_start_us"], c["rule"], c["label"])
            if key not in latest or c["revision"] >= latest[key]["revision"]:
                latest[key] = c
        return latest

    def close(self) -> None:
        self.consumer.close()


def totals(latest: dict[tuple[int, str, str], dict[str, Any]]) -> dict[str, int]:
    return {
        "in": sum(c["crossed_in"] for (_, r, _), c in latest.items() if r == "middle"),
        "out": sum(c["crossed_out"] for (_, r, _), c in latest.items() if r == "middle"),
        "entries": sum(c["entries"] for (_, r, _), c in latest.items() if r == "right"),
    }


async def save_rules(url: str, text: str) -> dict[str, Any]:
    """Save a rules document through the gateway's WS /v1/rules; its answer."""
    async with connect(url + "/v1/rules", additional_headers=AUTH) as socket:
        hello = json.loads(await socket.recv())
        assert hello["type"] == "hello" and hello["endpoint"] == "rules"
        await socket.send(text)
        answer: dict[str, Any] = json.loads(await socket.recv())
        return answer


async def test_the_clip_gives_its_crossings_zone_events_and_counts_exactly(
    stack: Stack,
    start_gateway: Any,
    start_worker: Any,
    start_analytics: Any,
    media: Path,
) -> None:
    clip = make_clip((media / "dog.jpg").read_bytes())
    start_worker()
    # The clip is sent as fast as the gateway takes it (its times are the clip's own).
    gateway = start_gateway(VAE_GATEWAY_MAX_FPS_PER_STREAM="0")
    # No rules file: the rules arrive through the gateway while the analytics runs.
    analytics = start_analytics()
    bad = await save_rules(ws_url(gateway), RULES_YAML.replace("points:", "pointz:", 1))
    assert bad["type"] == "error" and bad["code"] == "bad_rules"
    assert 'streams."clip-*".lines[0].pointz: unknown key' in bad["message"]
    saved = await save_rules(ws_url(gateway), RULES_YAML)
    assert saved == {"type": "rules_saved", "streams": 1}
    rules_topic = stack.env["VAE_TOPICS_RULES"]
    await asyncio.to_thread(analytics.wait_log, f"rules loaded from {rules_topic}", 60)
    assert await asyncio.to_thread(get_text, f"{gateway.http}/v1/rules") == RULES_YAML
    # The gateway's subscribe and events sockets, open before anything is pushed.
    feed = await connect(ws_url(gateway) + "/v1/subscribe?streams=clip-1", additional_headers=AUTH)
    socket = await connect(ws_url(gateway) + "/v1/events?streams=clip-1", additional_headers=AUTH)
    hello = json.loads(await socket.recv())
    assert hello == {"type": "hello", "endpoint": "events", "streams": ["clip-1"]}
    # A last, empty frame 10 s on: the track is lost and every window closes.
    frames, ts = with_blank_end(clip, 10_000_000)
    await push_clip(ws_url(gateway), "clip-1", frames, ts)

    reader = TopicReader(stack)
    try:
        expected = await asyncio.to_thread(reader.read_clip, clip)
    finally:
        reader.close()
    assert [(e["kind"], e["direction"]) for e in reader.events] == EXPECTED_EVENTS
    assert len({e["event_id"] for e in reader.events}) == len(EXPECTED_EVENTS)
    assert {e["stream_id"] for e in reader.events} == {"clip-1"}
    assert {e["label"] for e in reader.events} == {"car"}
    assert len({e["track_id"] for e in reader.events}) == 1  # one car, one track
    crossings = [e for e in reader.events if e["kind"] == "line_crossed"]
    assert all(e["rule"] == "middle" and e["score"] > 0.3 for e in crossings)
    assert totals(reader.latest_counts()) == expected
    peaks = [c["peak_occupancy"] for c in reader.latest_counts().values() if c["rule"] == "right"]
    assert max(peaks) == 1

    # WS /v1/events pushed the same events and every count record, one JSON message each.
    pushed: list[dict[str, Any]] = []
    while sum(m["type"] == "counts" for m in pushed) < len(reader.counts) or sum(
        m["type"] == "event" for m in pushed
    ) < len(EXPECTED_EVENTS):
        pushed.append(json.loads(await asyncio.wait_for(socket.recv(), 30)))
    await socket.close()
    assert [m["event_id"] for m in pushed if m["type"] == "event"] == [
        e["event_id"] for e in reader.events
    ]
    first = next(m for m in pushed if m["type"] == "event")
    assert {"kind", "stream_id", "rule", "direction", "label", "track_id", "event_id"} <= set(first)
    # The subscribe socket carries each frame's objects with their track ids and zones.
    track_ids: set[int] = set()
    zones: set[str] = set()
    tracks_seen = 0
    while tracks_seen < len(frames):
        message = json.loads(await asyncio.wait_for(feed.recv(), 30))
        if message["type"] == "tracks":
            tracks_seen += 1
            track_ids |= {o["track_id"] for o in message["objects"] if o["label"] == "car"}
            zones |= {z for o in message["objects"] for z in o["zones"]}
    await feed.close()
    assert track_ids == {-1, next(e["track_id"] for e in reader.events)}  # -1 before confirmed
    assert zones == {"right"}
    # GET /v1/streams/clip-1/counts: totals since the analytics started, and the windows.
    board = await asyncio.to_thread(get_json, f"{gateway.http}/v1/streams/clip-1/counts")
    by_rule = {(t["rule"], t["label"]): t for t in board["totals"]}
    assert by_rule[("middle", "car")]["crossed_in"] == clip.crossed_in
    assert by_rule[("middle", "car")]["crossed_out"] == clip.crossed_out
    assert by_rule[("right", "car")]["entries"] == clip.zone_entries
    assert len(board["windows"]) == len(reader.latest_counts())


def committed(stack: Stack) -> int:
    """Records of the detections topic the analytics group has committed (all partitions)."""
    topics = engine_topics(stack.settings.topics)
    consumer = Consumer(
        {"bootstrap.servers": stack.bootstrap, "group.id": stack.env["VAE_ANALYTICS_GROUP_ID"]}
    )
    try:
        wanted = [
            TopicPartition(topics.detections.name, p) for p in range(topics.detections.partitions)
        ]
        return sum(max(tp.offset, 0) for tp in consumer.committed(wanted, timeout=10))
    finally:
        consumer.close()


def wait_committed(stack: Stack, count: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    done = committed(stack)
    while done < count and time.monotonic() < deadline:
        time.sleep(0.5)
        done = committed(stack)
    return done


def uninterrupted(stack: Stack, window_s: float, grace_s: float) -> dict[tuple[int, str, str], Any]:
    """Each window's counts from one uninterrupted pass of the pure analytics over the same
    detections records the service consumed (read back from the detections topic)."""
    topics = engine_topics(stack.settings.topics)
    consumer = Consumer({"bootstrap.servers": stack.bootstrap, "group.id": "reference"})
    consumer.assign(
        [TopicPartition(topics.detections.name, p, -2) for p in range(topics.detections.partitions)]
    )
    decoder = topics.detections.reader(LocalSchemaIds())
    analytics = StreamAnalytics(
        "clip-1", parse_rules(RULES_YAML).for_stream("clip-1"), window_s=window_s, grace_s=grace_s
    )
    latest: dict[tuple[int, str, str], Any] = {}
    idle_until = time.monotonic() + 10
    while time.monotonic() < idle_until:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        idle_until = time.monotonic() + 3
        out = analytics.apply(message.offset(), frame_in(decoder.decode(message.value())))
        assert out is not None
        for r in out.counts:
            latest[(r.window_start_us, r.rule, r.label)] = r.counts
    consumer.close()
    return latest


async def test_sigkill_mid_window_the_next_worker_restores_and_counts_as_uninterrupted(
    stack: Stack,
    start_gateway: Any,
    start_worker: Any,
    start_analytics: Any,
    media: Path,
    tmp_path: Path,
) -> None:
    rules = rules_file(tmp_path)
    clip = make_clip((media / "dog.jpg").read_bytes())
    env = {"VAE_ANALYTICS_RULES": str(rules)}
    start_worker()
    # The clip is sent as fast as the gateway takes it (its times are the clip's own).
    gateway = start_gateway(VAE_GATEWAY_MAX_FPS_PER_STREAM="0")
    first = start_analytics("killed-analytics-1", **env)
    frames, ts = with_blank_end(clip, 10_000_000)
    # Frames 0..17: the car has just crossed in (at 1.3 s); frame 17 is at 1.7 s, in the
    # middle of the window [0 s, 2 s) whose count (1 in) lives only in the first worker's
    # table until that window closes: the second worker must restore it.
    cut = 18
    await push_clip(ws_url(gateway), "clip-1", frames[:cut], ts[:cut])
    reader = TopicReader(stack)
    try:
        await asyncio.to_thread(reader.poll_until, lambda: reader.tracks >= cut, 90)
        assert reader.tracks >= cut, first.log()
        # Once the input is committed, only the changelog can bring the window's count back.
        assert await asyncio.to_thread(wait_committed, stack, cut, 30) == cut
        first.stop(signal.SIGKILL)
        second = start_analytics("analytics-2", **env)
        await push_clip(ws_url(gateway), "clip-1", frames[cut:], ts[cut:])
        expected = await asyncio.to_thread(reader.read_clip, clip)
    finally:
        reader.close()
    assert totals(reader.latest_counts()) == expected
    assert "stream clip-1 resumed at offset" in second.log(400)
    reference = await asyncio.to_thread(uninterrupted, stack, 2.0, 0.5)
    got = {
        k: (c["crossed_in"], c["crossed_out"], c["entries"], c["peak_occupancy"])
        for k, c in reader.latest_counts().items()
    }
    want = {k: (c.crossed_in, c.crossed_out, c.entries, c.peak) for k, c in reference.items()}
    assert got == want
    # The kill fell between crossings, so the new tracker missed none, and nothing applied
    # before the kill was applied again.
    assert [(e["kind"], e["direction"]) for e in reader.events] == EXPECTED_EVENTS
    assert len({e["event_id"] for e in reader.events}) == len(EXPECTED_EVENTS)


def wait_rules(gateway_http: str, text: str, timeout: float = 60) -> str:
    """Poll GET /v1/rules until it answers ``text``; the last answer."""
    deadline = time.monotonic() + timeout
    answer = ""
    while time.monotonic() < deadline:
        try:
            answer = get_text(f"{gateway_http}/v1/rules")
        except urllib.error.HTTPError as exc:
            answer = f"HTTP {exc.code}"
        if answer == text:
            break
        time.sleep(0.2)
    return answer


async def test_the_rules_in_force_from_a_file_reach_the_gateway_and_the_latest_edit_wins(
    stack: Stack, start_gateway: Any, start_analytics: Any, tmp_path: Path
) -> None:
    rules = rules_file(tmp_path)
    gateway = start_gateway()
    analytics = start_analytics(VAE_ANALYTICS_RULES=str(rules))
    # The file's rules are published to the rules topic: GET /v1/rules (the viewer) has them.
    assert await asyncio.to_thread(wait_rules, gateway.http, RULES_YAML) == RULES_YAML
    changed = RULES_YAML.replace("name: middle", "name: centre")
    rules.write_text(changed)  # read again within a second, and published
    assert await asyncio.to_thread(wait_rules, gateway.http, changed) == changed
    saved_text = RULES_YAML.replace("name: right", "name: bay")
    assert await save_rules(ws_url(gateway), saved_text) == {"type": "rules_saved", "streams": 1}
    # A restart with the file unchanged: the rules saved since win, nothing is published.
    analytics.stop()
    again = start_analytics("analytics-again", VAE_ANALYTICS_RULES=str(rules))
    await asyncio.to_thread(again.wait_log, f"rules loaded from {stack.env['VAE_TOPICS_RULES']}")
    assert "published" not in again.log(400)
    assert await asyncio.to_thread(get_text, f"{gateway.http}/v1/rules") == saved_text
    # The file edited while no analytics ran: at the next start it is the latest, and wins.
    again.stop()
    edited = RULES_YAML.replace("name: right", "name: dock")
    rules.write_text(edited)
    third = start_analytics("analytics-third", VAE_ANALYTICS_RULES=str(rules))
    assert await asyncio.to_thread(wait_rules, gateway.http, edited) == edited
    assert f"rules of {rules} published" in third.log(400)

"""The faust-streaming wiring of `vae analytics` (the only module that imports faust).

One agent consumes vae.detections (keyed by stream_id, so a stream's records reach one
worker in order); per stream it runs ``StreamAnalytics`` and produces vae.tracks,
vae.events and vae.counts. Each stream's durable state (windows, totals, the last input
offset applied) is a value of the ``state`` table, whose changelog topic lets the worker
that takes a partition over resume it. Facts about the embedded broker (Tansu) that shape
the settings below are in README (Analytics):

- ``producer_max_batch_size=1``: Tansu answers ListOffsets(LATEST) with the base offset of
  the last record batch + 1, so with multi-record batches faust ends changelog recovery
  early and loses state; one record per batch makes recovery exact;
- at-least-once (``exactly_once`` needs InitProducerId, which Tansu refuses to aiokafka):
  a redelivered record is ignored by its offset (``StreamAnalytics.apply``);
- a short fetch wait (``prompt_fetches``): faust fixes its consumer's at 1500 ms, with
  which detections arrived in bursts, so track ids and events were late by up to 0.75 s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from pipeline.analytics.convert import counts_record, event_record, frame_in, tracks_record
from pipeline.analytics.stream import StreamAnalytics
from pipeline.config import Settings
from pipeline.kafka.registry import schema_ids_from
from pipeline.kafka.tail import TopicTail, TopicUnreadable, last_value
from pipeline.protocol.rules import Rules, RulesError, parse_rules
from pipeline.serde import RulesRecord
from pipeline.topics import engine_topics

log = logging.getLogger("vae.analytics")

STATE_TABLE = "state"


class RulesFile:
    """The rules file, read again when it changes (so rules reload without a restart).

    Rules saved through the gateway (the rules topic) replace these when they arrive; a
    later change of the file replaces those in turn: the latest wins. The file's rules are
    published to the rules topic when they are the latest (``publish_file_rules``), so the
    gateway (GET /v1/rules: the viewer draws them) and the other workers know them too.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.mtime_ns: int | None = None
        self.text = ""  # the file's text as last loaded ("" until one loaded)
        self.rules = Rules()
        self.reload()

    def reload(self) -> bool:
        """Read the file if it changed; True when new rules were loaded."""
        if not self.path:
            return False
        try:
            mtime = os.stat(self.path).st_mtime_ns  # noqa: PTH116 - a plain path string
            with open(self.path, encoding="utf-8") as f:  # noqa: PTH123 - a plain path string
                text = f.read()
        except OSError:
            return False
        if mtime == self.mtime_ns:
            return False
        self.mtime_ns = mtime
        try:
            rules = parse_rules(text)
        except RulesError as exc:
            log.error("rules not reloaded, keeping the previous ones: %s", exc)
            return False
        self.text, self.rules = text, rules
        log.info("rules loaded from %s: %d stream patterns", self.path, len(rules.streams))
        return True


def prompt_fetches(wait_ms: int) -> None:
    """Make faust's consumer fetch with ``wait_ms`` as its longest broker-side wait.

    faust 0.15.3 builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no way to
    change it; aiokafka hands the consumer's value to its fetcher when the consumer starts,
    so it is set on the consumer right after faust creates it. Measured on the embedded
    broker (tests/browser, the analytics clip at 10 fps): a tracks record was produced
    405 ms (median; up to 756 ms) after its detections with 1500 ms, 12 ms with 20 ms.
    """
    thread: Any = faust_aiokafka.AIOKafkaConsumerThread
    create = getattr(thread, "_vae_create_worker_consumer", thread._create_worker_consumer)

    def create_prompt(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = wait_ms
        return consumer

    thread._vae_create_worker_consumer = create  # the original, so a second call wraps it once
    thread._create_worker_consumer = create_prompt


def build_app(settings: Settings) -> faust.App:
    a = settings.analytics
    prompt_fetches(a.fetch_wait_ms)
    topics = engine_topics(settings.topics)
    ids = schema_ids_from(settings.schema_registry.url, settings.schema_registry.basic_auth)
    bootstrap = settings.kafka.bootstrap or "127.0.0.1:9092"
    app = faust.App(
        a.group_id,
        broker=[f"kafka://{b}" for b in bootstrap.split(",")],
        store="memory://",
        processing_guarantee="at_least_once",
        producer_max_batch_size=1,
        broker_session_timeout=a.session_timeout_s,
        broker_heartbeat_interval=max(0.5, a.session_timeout_s / 6),
        topic_partitions=topics.detections.partitions,
        topic_replication_factor=topics.detections.replication_factor,
        topic_allow_declare=True,
        web_enabled=False,
        # faust makes a data folder even for in-memory tables: a private temporary one, so
        # the working directory (read-only in the images) stays untouched.
        datadir=tempfile.mkdtemp(prefix="vae-analytics-"),
        key_serializer="raw",
        value_serializer="raw",
    )
    source = app.topic(topics.detections.name, key_type=bytes, value_type=bytes)
    out_tracks = app.topic(topics.tracks.name, key_type=bytes, value_type=bytes)
    out_events = app.topic(topics.events.name, key_type=bytes, value_type=bytes)
    out_counts = app.topic(topics.counts.name, key_type=bytes, value_type=bytes)
    out_rules = app.topic(topics.rules.name, key_type=bytes, value_type=bytes)
    state = app.Table(
        STATE_TABLE, default=None, partitions=topics.detections.partitions, value_type=bytes
    )
    reader = topics.detections.reader(ids)
    tracks_writer = topics.tracks.writer(ids)
    events_writer = topics.events.writer(ids)
    counts_writer = topics.counts.writer(ids)
    rules_writer = topics.rules.writer(ids)
    rules = RulesFile(a.rules)
    streams: dict[str, StreamAnalytics] = {}

    def analytics_for(stream_id: str) -> StreamAnalytics:
        found = streams.get(stream_id)
        if found is None:
            found = StreamAnalytics(
                stream_id, rules.rules.for_stream(stream_id), window_s=a.window_s,
                grace_s=a.grace_s,
            )  # fmt: skip
            saved: Any = state.get(stream_id)
            if saved is not None:
                found.restore(json.loads(saved))
                log.info("stream %s resumed at offset %d", stream_id, found.last_offset)
            streams[stream_id] = found
        return found

    @app.agent(source)
    async def analyse(stream: Any) -> None:
        async for event in stream.events():
            record = reader.decode(event.value)
            frame = frame_in(record)
            analytics = analytics_for(frame.stream_id)
            out = analytics.apply(event.message.offset, frame)
            if out is None:
                continue  # applied before this redelivery
            key = frame.stream_id.encode()
            tracks = tracks_record(out)
            await out_tracks.send(key=key, value=tracks_writer.value(tracks))
            for e in out.events:
                await out_events.send(key=key, value=events_writer.value(event_record(e)))
            for r in out.counts:
                value = counts_writer.value(counts_record(frame.stream_id, r))
                await out_counts.send(key=key, value=value)
            state[frame.stream_id] = json.dumps(analytics.to_state()).encode()

    def apply_rules() -> None:
        for stream_id, analytics in streams.items():
            analytics.set_rules(rules.rules.for_stream(stream_id))

    async def publish_file_rules() -> None:
        # The file's rules are the latest: on the rules topic, everyone knows them.
        record: RulesRecord = {"yaml": rules.text, "saved_ts_us": time.time_ns() // 1000}
        await out_rules.send(key=rules_writer.key(record), value=rules_writer.value(record))
        log.info("rules of %s published to %s", rules.path, topics.rules.name)

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def reload_rules() -> None:
        if rules.reload():
            apply_rules()
            await publish_file_rules()

    def rules_saved(text: str) -> None:
        # On the loop: the rules saved through the gateway (the topic's latest record).
        try:
            rules.rules = parse_rules(text)
        except RulesError as exc:  # the gateway validated it; a newer schema, say
            log.error("rules from %s not applied: %s", topics.rules.name, exc)
            return
        log.info("rules loaded from %s: %d stream patterns", topics.rules.name,
                 len(rules.rules.streams))  # fmt: skip
        apply_rules()

    @app.task  # type: ignore[untyped-decorator]
    async def follow_rules_topic() -> None:
        loop = asyncio.get_running_loop()
        decoder = topics.rules.reader(ids)
        if rules.text and rules.mtime_ns is not None:
            # At start the latest edit wins: the file, when it changed after the rules last
            # saved (or there are none), else the saved rules (which arrive below).
            try:
                value = await loop.run_in_executor(
                    None, last_value, settings.kafka, topics.rules.name
                )
            except TopicUnreadable as exc:
                log.error("rules topic not read, file rules not published: %s", exc)
            else:
                saved = decoder.decode(value) if value else None
                if saved is None or saved["saved_ts_us"] * 1000 < rules.mtime_ns:
                    await publish_file_rules()

        def deliver(batch: list[str]) -> None:
            loop.call_soon_threadsafe(rules_saved, batch[-1])

        tail = TopicTail(
            settings.kafka, topics.rules.name, lambda _k, v: decoder.decode(v)["yaml"], deliver,
            from_start=True,
        )  # fmt: skip
        tail.start()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget_streams(sender: Any, revoked: Any, **_: Any) -> None:
        # Whatever partitions come back after a rebalance, each stream resumes from the
        # table, never from in-memory state another worker may have moved past meanwhile.
        streams.clear()

    return app


def run_analytics(settings: Settings) -> int:
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=settings.log.level.lower(), redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0

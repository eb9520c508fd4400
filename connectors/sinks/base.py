"""The one base of every sink: a consumer group over the analytics' topics that commits a
batch's offsets only once its destination holds the batch.

One thread does it all, in order: poll records into a batch (up to ``--batch-max`` records,
or ``--batch-ms`` after the first), decode them, hand the batch to the destination, and
commit its positions synchronously once the destination says the write is durable. A
destination that is down raises ``DestinationUnavailable``: nothing is committed, the
consumer pauses (its polls keep it in the group) and the batch is retried with jittered
exponential backoff, forever. A sink killed at any moment therefore reads its uncommitted
records again, and since every destination writes by key (records.py), each record ends up
once at the destination: at least once into the sink, exactly once at the destination by
key. A record that can never be written (not readable; a webhook that keeps refusing it)
goes to the sinks' dead-letter topic, and is committed once the broker has the letter.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from connectors.sinks.metrics import SinkMetrics
from connectors.sinks.options import SinkOptions
from connectors.sinks.records import COUNTS, DETECTIONS, EVENT, Batch, Kind, SinkItem
from pipeline.config import Settings
from pipeline.kafka import consumer_config, producer_config
from pipeline.kafka.committing import CommitFailed, CommittingConsumer, Position, SourcedMessage
from pipeline.kafka.producer import CallbackProducer
from pipeline.kafka.registry import schema_ids_from
from pipeline.serde import AvroDecoder, SchemaIds, SchemaUnavailable, SerdeError, dead_letter_record
from pipeline.topics import engine_topics
from pipeline.worker.health import serve_health

log = logging.getLogger(__name__)

DEAD_LETTER_TIMEOUT_S = 10.0
POLL_SLICE_S = 0.1


class DestinationUnavailable(Exception):
    """The destination cannot take the batch now (down, timing out): retry, commit nothing."""


def backoff_delay(attempt: int, first_s: float, cap_s: float) -> float:
    """Jittered exponential backoff: between half and all of ``first * 2**attempt``, capped."""
    ceiling = min(cap_s, first_s * 2 ** min(attempt, 30))
    return random.uniform(ceiling / 2, ceiling)


class Context(ABC):
    """What a destination may ask of the runner while it writes a batch."""

    metrics: SinkMetrics

    @abstractmethod
    def wait(self, seconds: float) -> bool:
        """Sleep, staying in the group; False when the sink is stopping (give up the batch)."""

    @abstractmethod
    def backoff(self, attempt: int) -> float:
        """The jittered wait before retry ``attempt`` (0 first)."""

    @abstractmethod
    def dead_letter(self, item: SinkItem, reason: str, detail: str) -> None:
        """Write ``item`` to the dead-letter topic and wait for the broker; then it is done.
        Raises DestinationUnavailable when the broker does not take it in time."""


class Destination(ABC):
    """Where a sink writes; ``write`` returns only once the batch is durable there."""

    name: ClassVar[str]

    @abstractmethod
    def open(self) -> None:
        """Connect (and migrate); raise DestinationUnavailable to be retried."""

    @abstractmethod
    def write(self, batch: Batch, context: Context) -> None:
        """Write every ``batch.todo()`` item durably, or raise DestinationUnavailable.

        A retry hands the same batch again: items marked ``done`` are not written again."""

    @abstractmethod
    def describe(self) -> str:
        """Where it writes, for the log (no secrets)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True)
class TopicReader:
    kind: Kind
    decoder: AvroDecoder[Any]


class SinkRunner(Context):
    """A sink process: the consumer loop, the batches, the retries, the commits, the health."""

    def __init__(
        self,
        settings: Settings,
        options: SinkOptions,
        destination: Destination,
        ids: SchemaIds | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.destination = destination
        self.metrics = SinkMetrics(destination.name)
        self.identity = f"sink-{destination.name}@{socket.gethostname()}:{os.getpid()}"
        ids = ids or schema_ids_from(
            settings.schema_registry.url, settings.schema_registry.basic_auth
        )
        topics = engine_topics(settings.topics)
        self._readers: dict[str, TopicReader] = {
            topics.events.name: TopicReader(EVENT, topics.events.reader(ids)),
            topics.counts.name: TopicReader(COUNTS, topics.counts.reader(ids)),
        }
        if options.detections:
            self._readers[topics.detections.name] = TopicReader(
                DETECTIONS, topics.detections.reader(ids)
            )
        self._letters = topics.sink_dead_letters.writer(ids)
        self.group_id = options.group_id or f"vae-sink-{destination.name}"
        role = f"sink-{destination.name}"
        self.consumer = CommittingConsumer(
            consumer_config(
                settings.kafka,
                role,
                group_id=self.group_id,
                max_poll_interval_ms=options.max_poll_interval_ms,
                session_timeout_ms=options.session_timeout_ms,
                auto_commit=False,
            ),
            list(self._readers),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_stats=self._on_stats,
        )
        self.producer = CallbackProducer(
            producer_config(
                settings.kafka,
                role,
                linger_ms=1.0,
                max_message_bytes=settings.topics.max_message_bytes,
            )
        )
        self._stop = threading.Event()
        self._heartbeat = self._last_poll = time.monotonic()
        self._seq = 0
        self._pending = Batch(0)  # being filled
        self._writing: Batch | None = None  # being written (retried)
        self._first_at: float | None = None
        self._owned: set[Position] = set()
        self._destination_ok = False
        self.port = options.port

    # --- consumer callbacks (on this thread, inside poll) ------------------------------

    def _on_assign(self, positions: list[Position]) -> None:
        self._owned.update(positions)

    def _on_revoke(self, positions: list[Position]) -> None:
        """Records of revoked partitions are neither written nor committed: the next owner
        reads them again from the committed position."""
        gone = set(positions)
        self._owned.difference_update(gone)
        for batch in (self._pending, self._writing):
            if batch is None:
                continue
            for item in batch.items:
                if (item.topic, item.partition) in gone:
                    item.revoked = True
        self._pending.items = [i for i in self._pending.items if not i.revoked]
        for topic, partition in positions:
            with contextlib.suppress(KeyError):
                self.metrics.consumer_lag.remove(self.destination.name, topic, str(partition))

    def _on_stats(self, stats: dict[str, Any]) -> None:
        for name, topic in stats.get("topics", {}).items():
            for key, partition in topic.get("partitions", {}).items():
                lag = partition.get("consumer_lag", -1)
                if key.isdigit() and (name, int(key)) in self._owned and lag >= 0:
                    self.metrics.consumer_lag.labels(self.destination.name, name, key).set(lag)

    # --- Context ----------------------------------------------------------------------

    def wait(self, seconds: float) -> bool:
        """Sleep in slices, polling the consumer: it stays in the group and serves
        rebalances. What is polled meanwhile fills the next batch. Once that is full, it
        polls only as often as the group needs, paused (memory stays bounded while a
        destination is down); a short wait never pauses, as a resumed partition is fetched
        again only after a while (about a second: measured)."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            now = self._heartbeat = time.monotonic()
            left = deadline - now
            if left <= 0:
                return True
            room = self.options.batch_max - len(self._pending.items)
            if room <= 0:
                if now - self._last_poll < self.options.max_poll_interval_ms / 3000:
                    time.sleep(min(POLL_SLICE_S, left))
                    continue
                self.consumer.pause()
            self._poll(max(1, room), min(POLL_SLICE_S, left))
        return False

    def _poll(self, max_messages: int, timeout: float) -> None:
        self._last_poll = time.monotonic()
        for message in self.consumer.poll(max_messages, timeout):
            self._accept(message)

    def backoff(self, attempt: int) -> float:
        o = self.options
        return backoff_delay(attempt, o.backoff_ms / 1000.0, o.max_backoff_ms / 1000.0)

    def dead_letter(self, item: SinkItem, reason: str, detail: str) -> None:
        letter = dead_letter_record(
            source_topic=item.topic,
            source_partition=item.partition,
            source_offset=item.offset,
            key=item.key,
            reason=reason,
            detail=detail,
            worker=self.identity,
            dead_ts_us=time.time_ns() // 1000,
            value=item.raw,
        )
        delivered = threading.Event()
        errors: list[str] = []

        def on_delivery(error: str | None) -> None:
            if error is not None:
                errors.append(error)
            delivered.set()

        self.producer.produce(
            self._letters.topic, self._letters.key(letter), self._letters.value(letter), on_delivery
        )
        deadline = time.monotonic() + DEAD_LETTER_TIMEOUT_S
        while not delivered.is_set():
            if time.monotonic() > deadline or not self.wait(0.05):
                raise DestinationUnavailable("dead letter not acknowledged by the broker")
        if errors:
            raise DestinationUnavailable(f"dead letter not delivered: {errors[0]}")
        item.done = item.dead = True
        self.metrics.dead_lettered.labels(self.destination.name, reason).inc()
        log.warning(
            "dead letter: %s %d@%d (%s): %s",
            item.topic,
            item.offset,
            item.partition,
            reason,
            detail,
        )

    # --- the loop ---------------------------------------------------------------------

    def _accept(self, message: SourcedMessage) -> None:
        reader = self._readers.get(message.topic)
        if reader is None or (message.topic, message.partition) not in self._owned:
            return  # fetched before a revoke: its next owner reads it
        self.metrics.records_read.labels(self.destination.name, message.topic).inc()
        if not self._pending.items:
            self._first_at = time.monotonic()
        self._pending.items.append(
            SinkItem(
                reader.kind,
                message.topic,
                message.partition,
                message.offset,
                message.key,
                message.value,
            )
        )

    def _decode(self, batch: Batch, since: float) -> None:
        """Decode what is not yet; a record that cannot be read goes to the dead letters,
        one whose schema id is unknown is retried (with the batch) for a while first."""
        waited_ms = (time.monotonic() - since) * 1000
        for item in batch.items:
            if item.value is not None or item.done or item.revoked:
                continue
            try:
                item.value = dict(self._readers[item.topic].decoder.decode(item.raw))
            except SchemaUnavailable as exc:
                if waited_ms < self.options.unknown_schema_wait_ms:
                    raise DestinationUnavailable(f"schema unknown for now: {exc}") from exc
                self.dead_letter(item, "unknown_schema", str(exc))
            except SerdeError as exc:
                self.dead_letter(item, "bad_record", str(exc))

    def _set_up(self, up: bool) -> None:
        self._destination_ok = up
        self.metrics.destination_up.set(1 if up else 0)

    def _flush(self) -> None:
        batch, self._pending = self._pending, Batch(self._seq + 1)
        self._seq += 1
        self._first_at = None
        if not batch.items:
            return
        self._writing = batch
        started = time.monotonic()
        attempt = 0
        try:
            while True:
                try:
                    self._decode(batch, started)
                    if batch.todo():
                        self.destination.write(batch, self)
                    break
                except DestinationUnavailable as exc:
                    self._set_up(False)
                    self.metrics.retries.inc()
                    delay = self.backoff(attempt)
                    log.warning(
                        "%s: %s; batch of %d retried in %.1f s (attempt %d)",
                        self.destination.name,
                        exc,
                        batch.live(),
                        delay,
                        attempt + 1,
                    )
                    attempt += 1
                    if not self.wait(delay):
                        log.warning("stopping: a batch of %d left uncommitted", batch.live())
                        return
            self._set_up(True)
            written = [i for i in batch.items if not (i.revoked or i.dead) and i.value is not None]
            for item in written:
                self.metrics.written.labels(self.destination.name, item.kind).inc()
            self.metrics.batch_records.observe(len(written))
            try:
                self.consumer.commit(batch.positions())
                self.metrics.commits.inc()
            except CommitFailed as exc:
                self.metrics.commit_failures.inc()
                log.warning("commit failed (the batch will be written again): %s", exc)
            self.metrics.write_seconds.observe(time.monotonic() - started)
        finally:
            self._writing = None
            self.consumer.resume()

    def _open(self) -> bool:
        attempt = 0
        while not self._stop.is_set():
            try:
                self.destination.open()
                self._set_up(True)
                return True
            except DestinationUnavailable as exc:
                self._set_up(False)
                delay = self.backoff(attempt)
                log.warning("%s: %s; retrying in %.1f s", self.destination.name, exc, delay)
                attempt += 1
                if not self.wait(delay):
                    return False
        return False

    def _consume_once(self) -> None:
        self._heartbeat = time.monotonic()
        o = self.options
        timeout = POLL_SLICE_S
        if self._first_at is not None:
            timeout = max(0.0, min(timeout, self._first_at + o.batch_ms / 1000 - time.monotonic()))
        self._poll(max(1, o.batch_max - len(self._pending.items)), timeout)
        self.metrics.uncommitted.set(len(self._pending.items))
        full = len(self._pending.items) >= o.batch_max
        due = self._first_at is not None and time.monotonic() >= self._first_at + o.batch_ms / 1000
        if full or due:
            self._flush()
            self.metrics.uncommitted.set(len(self._pending.items))

    # --- lifecycle --------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def healthy(self) -> tuple[bool, str]:
        age = time.monotonic() - self._heartbeat
        return age < 60, f"loop last ran {age:.1f} s ago"

    def ready(self) -> tuple[bool, str]:
        if not self.consumer.joined:
            return False, "joining the consumer group"
        if not self._destination_ok:
            return False, f"{self.destination.name} unavailable (retrying)"
        return True, f"in group {self.group_id}, writing to {self.destination.describe()}"

    def run(self) -> int:
        health = serve_health(
            self.options.port, self.metrics.registry, self.healthy, self.ready, self.options.host
        )
        self.port = health.server_address[1]
        log.info(
            "sink %s: group %s, topics %s -> %s; health on http://%s:%d",
            self.destination.name,
            self.group_id,
            ", ".join(self._readers),
            self.destination.describe(),
            self.options.host,
            self.port,
        )
        try:
            if self._open():
                while not self._stop.is_set():
                    self._consume_once()
                if self._pending.items and self._destination_ok:  # SIGTERM: one more write
                    self._stop.clear()
                    self._stop_soon()
                    self._flush()
        finally:
            self.destination.close()
            self.producer.close(5.0)
            self.consumer.close(10.0)
            health.shutdown()
        return 0

    def _stop_soon(self) -> None:
        """The last batch gets a few seconds to be written, then the sink stops anyway."""
        timer = threading.Timer(10.0, self._stop.set)
        timer.daemon = True
        timer.start()


def run_sink(settings: Settings, options: SinkOptions, destination: Destination) -> int:
    """Entry point of `vae sink <destination>`."""
    runner = SinkRunner(settings, options, destination)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runner.stop())
    return runner.run()

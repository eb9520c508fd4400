"""The engine's one producer: confluent-kafka with a thread that serves delivery reports.

librdkafka does the I/O on its own threads; ``produce`` only queues. ``PolledProducer`` owns
the poll thread that runs delivery callbacks. Two front-ends are layered on it:

- ``CallbackProducer`` (the worker's stage threads, the benchmarks): a callback per message,
  and a full local queue waits for room (backpressure into the stage).
- ``AsyncProducer`` (the gateway's event loop): ``send`` never blocks; deliveries are
  handed to the loop in batches (one wake-up per batch, not per message), where each
  message's ``DeliveryReport`` settles (the ingest path: no future or task per frame);
  ``produce`` wraps that in a future for the occasional caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

DeliveryCallback = Callable[[str | None], None]  # None on success, else the error


class QueueFull(RuntimeError):
    """The producer's local queue stayed full for longer than the caller would wait."""


class DeliveryFailed(RuntimeError):
    """The broker did not take a message; ``code`` is librdkafka's error name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Delivered:
    """Where a message landed."""

    partition: int
    offset: int
    broker_s: float = 0.0  # produce() to the delivery report (librdkafka's msg.latency())


class PolledProducer:
    """A Producer and the thread that polls it; subclasses decide how deliveries surface.

    ``thread_name`` None: no thread, the subclass polls (AsyncProducer on its loop).
    """

    def __init__(self, config: dict[str, Any], *, thread_name: str | None, poll_s: float) -> None:
        self._producer = Producer(config)
        self._poll_s = poll_s
        self._running = True
        self._thread: threading.Thread | None = None
        if thread_name is not None:
            self._thread = threading.Thread(
                target=self._poll_forever, name=thread_name, daemon=True
            )
            self._thread.start()

    def _poll_forever(self) -> None:
        while self._running:
            self._producer.poll(self._poll_s)
            self._after_poll()

    def _after_poll(self) -> None:
        """Runs on the poll thread after each poll (hand-over point for batched reports)."""

    def __len__(self) -> int:
        """Messages waiting in the local queue or in flight to the broker."""
        return len(self._producer)

    def flush(self, timeout: float) -> int:
        """Wait for deliveries; return how many messages are still undelivered."""
        return int(self._producer.flush(timeout))

    def list_topics(self, timeout: float) -> dict[str, int]:
        """Topic -> partitions, through this producer's connections (blocking: use a thread)."""
        metadata = self._producer.list_topics(timeout=timeout)
        return {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}

    def close(self, timeout: float = 10.0) -> int:
        """Wait for queued messages to be delivered; return how many were not."""
        remaining = self.flush(timeout)
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self._after_poll()
        return remaining


class CallbackProducer(PolledProducer):
    """For threads: produce with a callback, never drop on a full queue."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config, thread_name="delivery-poll", poll_s=0.1)

    def try_produce(self, topic: str, key: bytes, value: bytes, callback: DeliveryCallback) -> None:
        """Queue a message now; raises BufferError when the local queue is full."""

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            callback(None if err is None else f"{err.name()}: {err.str()}")

        self._producer.produce(topic, value, key, on_delivery=on_delivery)

    def produce(self, topic: str, key: bytes, value: bytes, callback: DeliveryCallback) -> None:
        """Queue a message; when the local queue is full, wait for room (backpressure)."""
        while True:
            try:
                self.try_produce(topic, key, value, callback)
                return
            except BufferError:
                # Queue full: the poll thread frees room as deliveries complete.
                time.sleep(0.01)


class DeliveryReport:
    """One message's delivery: filled in on the poll thread, then ``settle`` runs on the loop.

    ``AsyncProducer.send`` takes one per message and calls it from librdkafka's delivery
    callback (the report is that callback: no closure or future per message); reports
    reach the loop in batches, one wake-up per poll. Subclasses implement ``settle``.
    """

    __slots__ = ("_outbox", "broker_s", "error", "offset", "partition")
    _outbox: Callable[[DeliveryReport], None]  # set by AsyncProducer.send

    def __init__(self) -> None:
        self.error: DeliveryFailed | None = None
        self.partition = -1
        self.offset = -1
        self.broker_s = 0.0  # produce() to the delivery report (librdkafka's msg.latency())

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        # Runs on the poll thread (or a thread in flush()).
        if err is None:
            partition, offset, latency = msg.partition(), msg.offset(), msg.latency()
            self.partition = -1 if partition is None else partition
            self.offset = -1 if offset is None else offset
            self.broker_s = 0.0 if latency is None else latency
        else:
            self.error = DeliveryFailed(err.name(), err.str())
        self._outbox(self)

    def settle(self) -> None:
        """Runs on the event loop once the broker took the message (or refused it)."""
        raise NotImplementedError


class _FutureReport(DeliveryReport):
    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[Delivered]) -> None:
        super().__init__()
        self.future = future

    def settle(self) -> None:
        if self.future.done():
            return
        if self.error is None:
            self.future.set_result(Delivered(self.partition, self.offset, self.broker_s))
        else:
            self.future.set_exception(self.error)


class AsyncProducer(PolledProducer):
    """For coroutines: non-blocking produce; deliveries are settled on the loop in batches.

    By default the loop itself polls librdkafka (a timer, every ``BUSY_POLL_S`` while
    messages are in flight, every ``IDLE_POLL_S`` otherwise), so a delivery report costs no
    thread wake-up, no GIL hand-over and no loop wake-up of its own. With an ``oauth_cb`` in
    the config (MSK IAM signs tokens, which may reach the network) a thread polls instead,
    so that callback never runs on the loop; its reports reach the loop in batches.
    """

    BUSY_POLL_S = 0.001
    IDLE_POLL_S = 0.25

    def __init__(self, config: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._done: list[DeliveryReport] = []
        self._done_lock = threading.Lock()
        self._room = asyncio.Event()
        self._outbox = self._arrived  # bound once, not per message
        on_loop = "oauth_cb" not in config
        self._timer: asyncio.Handle | None = None
        self._busy = False
        super().__init__(config, thread_name=None if on_loop else "producer-poll", poll_s=0.05)
        if on_loop:
            self._timer = loop.call_soon(self._tick)

    def _arrived(self, report: DeliveryReport) -> None:
        with self._done_lock:
            self._done.append(report)

    def _take(self) -> list[DeliveryReport]:
        with self._done_lock:
            batch, self._done = self._done, []
        return batch

    def _tick(self) -> None:
        """On the loop: serve delivery reports, settle them, and poll again soon."""
        if not self._running:
            self._timer = None
            return
        self._producer.poll(0)
        batch = self._take()
        if batch:
            self._settle(batch)
        self._busy = len(self._producer) > 0
        self._timer = self._loop.call_later(
            self.BUSY_POLL_S if self._busy else self.IDLE_POLL_S, self._tick
        )

    def _after_poll(self) -> None:
        # A poll off the loop (the thread, or flush() at close): hand the batch over.
        batch = self._take()
        if batch:
            # RuntimeError: the loop closed during shutdown; nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._settle, batch)

    def _settle(self, batch: list[DeliveryReport]) -> None:
        for report in batch:
            report.settle()
        self._room.set()

    @property
    def room(self) -> asyncio.Event:
        """Set on the loop whenever deliveries freed room in the local queue (clear it, then
        wait on it)."""
        return self._room

    def send(self, topic: str, key: bytes, value: bytes, report: DeliveryReport) -> None:
        """Queue a message now; ``report.settle()`` runs on the loop once it is delivered.
        Raises BufferError when the local queue is full (nothing was queued)."""
        report._outbox = self._outbox
        self._producer.produce(topic, value, key, on_delivery=report)
        if not self._busy and self._timer is not None:
            # Idle until now: poll at the busy pace from the next millisecond on.
            self._busy = True
            self._timer.cancel()
            self._timer = self._loop.call_later(self.BUSY_POLL_S, self._tick)

    def produce(self, topic: str, key: bytes, value: bytes) -> asyncio.Future[Delivered]:
        """Queue a message now; raises BufferError when the local queue is full."""
        future: asyncio.Future[Delivered] = self._loop.create_future()
        self.send(topic, key, value, _FutureReport(future))
        return future

    async def produce_waiting(
        self, topic: str, key: bytes, value: bytes, wait_s: float
    ) -> asyncio.Future[Delivered]:
        """Produce, waiting up to ``wait_s`` seconds for room in a full local queue."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                return self.produce(topic, key, value)
            except BufferError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise QueueFull(
                        f"producer queue full for {wait_s:.1f} s ({len(self)} messages pending)"
                    ) from None
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), min(remaining, 0.1))

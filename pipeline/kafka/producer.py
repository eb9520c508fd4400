"""The engine's one producer: confluent-kafka with a thread that serves delivery reports.

librdkafka does the I/O on its own threads; ``produce`` only queues. ``PolledProducer`` owns
the poll thread that runs delivery callbacks. Two front-ends are layered on it:

- ``CallbackProducer`` (the worker's stage threads, the benchmarks): a callback per message,
  and a full local queue waits for room (backpressure into the stage).
- ``AsyncProducer`` (the gateway's event loop): ``produce`` never blocks; deliveries are
  handed to the loop in batches (one wake-up per batch, not per message) and resolve the
  futures that ``produce`` returned.
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
    """A Producer and the thread that polls it; subclasses decide how deliveries surface."""

    def __init__(self, config: dict[str, Any], *, thread_name: str, poll_s: float) -> None:
        self._producer = Producer(config)
        self._poll_s = poll_s
        self._running = True
        self._thread = threading.Thread(target=self._poll_forever, name=thread_name, daemon=True)
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


_Done = tuple["asyncio.Future[Delivered]", KafkaError | None, int, int, float]


class AsyncProducer(PolledProducer):
    """For coroutines: non-blocking produce; deliveries resolve asyncio futures."""

    def __init__(self, config: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._done: list[_Done] = []
        self._done_lock = threading.Lock()
        self._room = asyncio.Event()
        super().__init__(config, thread_name="producer-poll", poll_s=0.05)

    def _after_poll(self) -> None:
        with self._done_lock:
            batch, self._done = self._done, []
        if batch:
            # RuntimeError: the loop closed during shutdown; nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._settle, batch)

    def _settle(self, batch: list[_Done]) -> None:
        for future, err, partition, offset, broker_s in batch:
            if future.done():
                continue
            if err is None:
                future.set_result(Delivered(partition, offset, broker_s))
            else:
                future.set_exception(DeliveryFailed(err.name(), err.str()))
        self._room.set()

    def produce(self, topic: str, key: bytes, value: bytes) -> asyncio.Future[Delivered]:
        """Queue a message now; raises BufferError when the local queue is full."""
        future: asyncio.Future[Delivered] = self._loop.create_future()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            # Runs on the poll thread.
            partition, offset, latency = msg.partition(), msg.offset(), msg.latency()
            item = (
                future,
                err,
                -1 if partition is None else partition,
                -1 if offset is None else offset,
                0.0 if latency is None else latency,
            )
            with self._done_lock:
                self._done.append(item)

        self._producer.produce(topic, value, key, on_delivery=on_delivery)
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

"""A confluent-kafka producer bridged to asyncio: produce never blocks the event loop.

librdkafka does the I/O on its own threads. A small poll thread serves delivery reports
and hands them to the loop in batches (one wake-up per batch, not per message), where
they resolve the futures that ``produce`` returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer


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


class AsyncProducer:
    """Non-blocking produce for coroutines; deliveries resolve asyncio futures."""

    def __init__(self, config: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        self._producer = Producer(config)
        self._loop = loop
        self._done: list[tuple[asyncio.Future[Delivered], KafkaError | None, int, int, float]] = []
        self._done_lock = threading.Lock()
        self._room = asyncio.Event()
        self._running = True
        self._thread = threading.Thread(
            target=self._poll_forever, name="producer-poll", daemon=True
        )
        self._thread.start()

    def __len__(self) -> int:
        """Messages waiting in the local queue or in flight to the broker."""
        return len(self._producer)

    def _poll_forever(self) -> None:
        while self._running:
            self._producer.poll(0.05)
            self._hand_over()

    def _hand_over(self) -> None:
        with self._done_lock:
            batch, self._done = self._done, []
        if batch:
            # RuntimeError: the loop closed during shutdown; nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._settle, batch)

    def _settle(
        self, batch: list[tuple[asyncio.Future[Delivered], KafkaError | None, int, int, float]]
    ) -> None:
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

    def list_topics(self, timeout: float) -> dict[str, int]:
        """Topic -> partitions, through this producer's connections (blocking: use a thread)."""
        metadata = self._producer.list_topics(timeout=timeout)
        return {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}

    def close(self, timeout: float = 10.0) -> int:
        """Wait for queued messages to be delivered; return how many were not."""
        remaining = int(self._producer.flush(timeout))
        self._running = False
        self._thread.join(timeout=1.0)
        self._hand_over()
        return remaining

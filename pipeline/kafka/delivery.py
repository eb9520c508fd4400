"""A producer for worker threads: produce with a callback, never drop on a full queue."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

log = logging.getLogger(__name__)

DeliveryCallback = Callable[[str | None], None]  # None on success, else the error


class CallbackProducer:
    """confluent-kafka Producer with its own poll thread serving delivery callbacks."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)
        self._running = True
        self._thread = threading.Thread(
            target=self._poll_forever, name="delivery-poll", daemon=True
        )
        self._thread.start()

    def _poll_forever(self) -> None:
        while self._running:
            self._producer.poll(0.1)

    def produce(self, topic: str, key: bytes, value: bytes, callback: DeliveryCallback) -> None:
        """Queue a message; when the local queue is full, wait for room (backpressure)."""

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            callback(None if err is None else f"{err.name()}: {err.str()}")

        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=on_delivery)
                return
            except BufferError:
                # Queue full: the poll thread frees room as deliveries complete.
                time.sleep(0.01)

    def __len__(self) -> int:
        return len(self._producer)

    def flush(self, timeout: float) -> int:
        """Wait for deliveries; return how many messages are still undelivered."""
        return int(self._producer.flush(timeout))

    def close(self, timeout: float = 10.0) -> int:
        remaining = self.flush(timeout)
        self._running = False
        self._thread.join(timeout=1.0)
        return remaining

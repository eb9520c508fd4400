"""What both of our consumer-group members share (``group.GroupConsumer`` for the worker,
``committing.CommittingConsumer`` for the sinks): the consumer built with its error and
statistics callbacks, a fatal error remembered, the fetch that awaits one record and takes
what is already there, and a close with a bound."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message

log = logging.getLogger(__name__)


class ConsumerFailed(RuntimeError):
    """librdkafka reported a fatal consumer error."""


class Member:
    """A consumer whose fatal errors surface at the next poll (the subclasses subscribe)."""

    def __init__(
        self,
        config: dict[str, Any],
        on_stats: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        conf = dict(config)
        if on_stats is not None:
            conf.setdefault("statistics.interval.ms", 5000)
            conf["stats_cb"] = lambda raw: on_stats(json.loads(raw))
        conf["error_cb"] = self._on_error
        self._consumer = Consumer(conf)
        self._paused = False
        self.joined = False
        self.fatal: str | None = None

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self.fatal = f"{error.name()}: {error.str()}"
        log.warning("consumer: %s", error.str())

    def _fetch(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to ``max_messages`` messages, waiting at most ``timeout`` seconds for the first.

        librdkafka's batch consume waits its whole timeout to fill a batch, so the first
        message is awaited alone and the rest are only what is already fetched.
        """
        if self.fatal:
            raise ConsumerFailed(self.fatal)
        first = self._consumer.poll(timeout)
        if first is None:
            return []
        batch = [first]
        if max_messages > 1:
            batch += self._consumer.consume(num_messages=max_messages - 1, timeout=0)
        return batch

    @staticmethod
    def _readable(message: Message) -> bool:
        """False for an error message (logged); a fatal one raises ConsumerFailed."""
        error = message.error()
        if error is None:
            return True
        if error.fatal():
            raise ConsumerFailed(f"{error.name()}: {error.str()}")
        log.warning("consume: %s", error.str())
        return False

    def pause(self) -> None:
        """Stop fetching (polls keep the membership alive and serve rebalances)."""
        if not self._paused:
            self._paused = True
            self._consumer.pause(self._consumer.assignment())

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._consumer.resume(self._consumer.assignment())

    @property
    def paused(self) -> bool:
        return self._paused

    def close(self, timeout: float) -> bool:
        """Leave the group, waiting at most ``timeout`` seconds (with auto-commit on, the
        stored offsets are committed first; the sinks' consumer commits nothing more).

        librdkafka's close waits on the broker without a bound, so a process whose broker is
        out of reach would hang on it; after the timeout it is left to finish (or not) on a
        daemon thread. False when it did not finish in time.
        """
        closing = threading.Thread(target=self._consumer.close, name="consumer-close", daemon=True)
        closing.start()
        closing.join(timeout)
        if closing.is_alive():
            log.warning("consumer close did not finish in %.0f s (broker out of reach?)", timeout)
            return False
        return True

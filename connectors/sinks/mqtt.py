"""`vae sink mqtt`: events and live counts on an MQTT broker (paho-mqtt), QoS 1.

The layout follows Frigate's (``frigate/events``, ``frigate/<camera>/<object>`` retained),
so home-automation users find what they expect (README, Sinks):

    <prefix>/events                               every event, JSON (not retained)
    <prefix>/<stream>/<rule>/<label>/in|out       a line's crossings in the latest window
    <prefix>/<stream>/<rule>/<label>/entries|occupancy   a zone's entries and peak occupancy
    <prefix>/<stream>/<rule>/<label>/window       that window's counts record, JSON
    <prefix>/<stream>/detections                  every frame's detections (--detections)

Counts are retained, so a subscriber learns the current values at once. The sink's offsets
are committed only after the broker's PUBACK of every message of the batch. A message not
acknowledged stays queued in paho, which sends it again when the connection is back; one
still unacknowledged ``--ack-timeout-s`` into a live connection is published again. So a
subscriber may see a message twice (QoS 1 is at least once): events carry ``event_id`` and
counts ``revision`` to deduplicate on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from connectors.sinks.base import Context, Destination, DestinationUnavailable
from connectors.sinks.options import MqttOptions
from connectors.sinks.records import COUNTS, EVENT, Batch, SinkItem, body

log = logging.getLogger(__name__)

QOS = 1
MAX_INFLIGHT = 200  # messages sent and not yet PUBACKed; more wait in paho's queue
Message = tuple[str, bytes, bool]  # topic, payload, retained


def topic_part(text: str) -> str:
    """A name as one topic level: no level separator, no wildcard."""
    return text.replace("/", "_").replace("+", "_").replace("#", "_") or "_"


def window_base(prefix: str, record: dict[str, Any]) -> str:
    """``<prefix>/<stream>/<rule>/<label>``: where a window's counts go."""
    parts = (record["stream_id"], record["rule"], record["label"])
    return "/".join((prefix, *map(topic_part, parts)))


def count_messages(prefix: str, record: dict[str, Any]) -> list[Message]:
    """A window's counts as retained messages: the measures as plain numbers (as Frigate's
    object counts are), then the whole record as JSON."""
    base = "/".join(
        (
            prefix,
            topic_part(record["stream_id"]),
            topic_part(record["rule"]),
            topic_part(record["label"]),
        )
    )
    if record["kind"] == "line":
        measures = {"in": record["crossed_in"], "out": record["crossed_out"]}
    else:
        measures = {"entries": record["entries"], "occupancy": record["peak_occupancy"]}
    return [(f"{base}/{name}", str(value).encode(), True) for name, value in measures.items()]


def messages_of(prefix: str, item: SinkItem) -> list[Message]:
    assert item.value is not None
    if item.kind == EVENT:
        return [(f"{prefix}/events", body(item), False)]
    if item.kind == COUNTS:
        v = item.value
        window = "/".join(
            (
                prefix,
                topic_part(v["stream_id"]),
                topic_part(v["rule"]),
                topic_part(v["label"]),
                "window",
            )
        )
        return [*count_messages(prefix, v), (window, body(item), True)]
    return [(f"{prefix}/{topic_part(item.value['stream_id'])}/detections", body(item), False)]


@dataclass
class Sent:
    """One item's messages as paho tracks them (each is marked published on its PUBACK),
    and when they were (re)published."""

    infos: list[mqtt.MQTTMessageInfo]
    at: float

    def acked(self) -> bool:
        return all(info.is_published() for info in self.infos)


class Refused(Exception):
    """paho refuses the message itself (too large, a bad topic): it will never go."""


class MqttSink(Destination):
    """Publishes a batch, then waits for every PUBACK."""

    name: ClassVar[str] = "mqtt"

    def __init__(self, options: MqttOptions) -> None:
        self.options = options
        self.prefix = options.prefix
        client_id = options.client_id or f"vae-sink-mqtt-{socket.gethostname()}-{os.getpid()}"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        if options.username:
            self.client.username_pw_set(options.username, options.password or None)
        if options.tls:
            self.client.tls_set()
        self.client.max_inflight_messages_set(MAX_INFLIGHT)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_socket_open = self._on_socket_open
        self._lock = threading.Lock()
        self._connected_at: float | None = None
        self._started = False
        self._batch = -1
        self._sent: dict[tuple[str, int, int], Sent] = {}
        # Per window's counts key: the newest (window_start, revision) published, so a late
        # revision of an older window never overwrites a newer window's retained values.
        self._latest: dict[tuple[str, str, str, str], tuple[int, int]] = {}

    # --- paho's thread ----------------------------------------------------------------

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("mqtt: connection refused: %s", reason)
            return
        with self._lock:
            self._connected_at = time.monotonic()
        log.info("mqtt: connected to %s:%d", self.options.host, self.options.port)

    def _on_socket_open(self, _c: Any, _u: Any, sock: Any) -> None:
        # A batch is many small PUBLISH packets, sent as they come: Nagle's algorithm would
        # hold each one behind the previous one's ACK.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        with self._lock:
            self._connected_at = None
        log.warning("mqtt: disconnected (%s); paho reconnects", reason)

    # --- the sink's thread -------------------------------------------------------------

    def describe(self) -> str:
        scheme = "mqtts" if self.options.tls else "mqtt"
        return f"{scheme}://{self.options.host}:{self.options.port} (prefix {self.prefix})"

    def open(self) -> None:
        if not self._started:
            self.client.connect_async(
                self.options.host, self.options.port, self.options.keepalive_s
            )
            self.client.loop_start()  # connects, and reconnects, on paho's thread
            self._started = True
        deadline = time.monotonic() + self.options.ack_timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self._connected_at is not None:
                    return
            time.sleep(0.05)
        raise DestinationUnavailable(f"not connected to {self.describe()}")

    def _publish(self, messages: list[Message]) -> Sent:
        infos = []
        for topic, payload, retain in messages:
            info = self.client.publish(topic, payload, qos=QOS, retain=retain)
            if info.rc == mqtt.MQTT_ERR_NO_CONN:
                # Not connected: paho keeps it queued and sends it once connected (but would
                # keep reporting the error it met here).
                info.rc = mqtt.MQTT_ERR_SUCCESS
            elif info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                raise DestinationUnavailable("paho's queue is full")
            elif info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise Refused(mqtt.error_string(info.rc))
            infos.append(info)
        return Sent(infos, time.monotonic())

    def _counts_current(self, item: SinkItem) -> bool:
        """Whether this window's counts are the newest seen for its key (and note them)."""
        v = item.value
        assert v is not None
        key = (v["stream_id"], v["rule"], v["kind"], v["label"])
        mark = (v["window_start_us"], v["revision"])
        if key in self._latest and self._latest[key] > mark:
            return False
        self._latest[key] = mark
        return True

    def write(self, batch: Batch, context: Context) -> None:
        if batch.seq != self._batch:  # a new batch: what an earlier one left is forgotten
            self._batch, self._sent = batch.seq, {}
        now = time.monotonic()
        with self._lock:
            connected_at = self._connected_at
        for item in batch.todo():
            where = (item.topic, item.partition, item.offset)
            sent = self._sent.get(where)
            try:
                if sent is None:
                    if item.kind == COUNTS and not self._counts_current(item):
                        item.done = True  # an older window: the retained values stay newer
                        continue
                    self._sent[where] = self._publish(messages_of(self.prefix, item))
                elif (
                    connected_at is not None
                    and now - max(sent.at, connected_at) > self.options.ack_timeout_s
                    and not sent.acked()
                ):  # not acknowledged on a live connection: publish it again
                    self._sent[where] = self._publish(messages_of(self.prefix, item))
            except Refused as exc:
                context.dead_letter(item, "refused", f"mqtt: {exc}")
        self._await_acks(batch, context)

    def _await_acks(self, batch: Batch, context: Context) -> None:
        deadline = time.monotonic() + self.options.ack_timeout_s
        while True:
            waiting = 0
            for item in batch.todo():
                sent = self._sent.get((item.topic, item.partition, item.offset))
                if sent is not None and sent.acked():
                    item.done = True
                elif sent is not None:
                    waiting += 1
            if not waiting:
                return
            if time.monotonic() > deadline:
                with self._lock:
                    state = "connected" if self._connected_at is not None else "disconnected"
                raise DestinationUnavailable(f"{waiting} records not acknowledged ({state})")
            if not context.wait(0.02):
                raise DestinationUnavailable("stopping")

    def close(self) -> None:
        if self._started:
            self.client.disconnect()
            self.client.loop_stop()

"""`vae sink webhook`: one signed POST per record, retried, dead-lettered when refused.

Each POST carries the record as JSON (records.py), ``Idempotency-Key: <the record's key>``
(an event's ``event_id``) so a receiver stores a repeat once, and
``X-VAE-Signature: sha256=<hex HMAC-SHA256 of the exact body with VAE_WEBHOOK_SECRET>``
with ``X-VAE-Timestamp`` (the time of the attempt, not signed: the body is what matters).

What an answer means:

- 2xx: delivered.
- no answer (refused, reset, timed out), 429, 502, 503, 504: the receiver is down or
  overloaded, not this record's fault. The batch is retried with backoff, forever, and
  nothing is committed meanwhile.
- anything else (4xx, 500, 501, ...): this record failed once. It is retried after a
  jittered exponential backoff; after ``--max-attempts`` such answers it goes to the sinks'
  dead-letter topic, and once the broker has it, its offset is committed with the batch.

Records are posted one at a time, in the order read, so a receiver sees each stream's
records in order (a dead-lettered one is skipped).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import ssl
import time
from typing import ClassVar
from urllib.parse import urlsplit

from connectors.sinks.base import Context, Destination, DestinationUnavailable
from connectors.sinks.options import WebhookOptions
from connectors.sinks.records import Batch, SinkItem, body

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-VAE-Signature"
DOWN_STATUSES = frozenset({429, 502, 503, 504})


def sign(secret: str, payload: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def verify(secret: str, payload: bytes, header: str) -> bool:
    """What a receiver does (constant-time compare); README shows the same in a few lines."""
    return hmac.compare_digest(sign(secret, payload), header)


class WebhookSink(Destination):
    """Posts each record of a batch until it is delivered or dead-lettered."""

    name: ClassVar[str] = "webhook"

    def __init__(self, options: WebhookOptions) -> None:
        self.options = options
        parts = urlsplit(options.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._conn: http.client.HTTPConnection | None = None
        self._failures: dict[tuple[str, int, int], int] = {}  # error answers per record
        self._batch = -1

    def describe(self) -> str:
        scheme = "https" if self._https else "http"
        return f"{scheme}://{self._host}:{self._port}{urlsplit(self.options.url).path or '/'}"

    def open(self) -> None:
        """Nothing to open: the first POST finds out whether the receiver is there."""

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host,
                    self._port,
                    timeout=self.options.timeout_s,
                    context=ssl.create_default_context(),
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self.options.timeout_s
                )
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def post(self, item: SinkItem) -> int | None:
        """One attempt: the HTTP status, or None when the receiver did not answer."""
        payload = body(item)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": item.ident(),
            SIGNATURE_HEADER: sign(self.options.secret, payload),
            "X-VAE-Timestamp": str(int(time.time())),
            "User-Agent": "vae-sink-webhook",
        }
        try:
            conn = self._connection()
            conn.request("POST", self._path, payload, headers)
            response = conn.getresponse()
            response.read()
            if response.will_close:
                self._drop()
            return response.status
        except (OSError, http.client.HTTPException) as exc:
            log.debug("webhook: %s", exc)
            self._drop()
            return None

    def write(self, batch: Batch, context: Context) -> None:
        if batch.seq != self._batch:
            self._batch, self._failures = batch.seq, {}
        for item in batch.todo():
            where = (item.topic, item.partition, item.offset)
            while not item.done:
                if item.revoked:
                    break  # its partition moved during a wait: the next owner posts it
                status = self.post(item)
                answer = "unreachable" if status is None else str(status)
                context.metrics.answers.labels(self.name, answer).inc()
                if status is not None and 200 <= status < 300:
                    item.done = True
                    self._failures.pop(where, None)
                elif status is None or status in DOWN_STATUSES:
                    raise DestinationUnavailable(f"{self.describe()} answered {answer}")
                else:
                    failures = self._failures[where] = self._failures.get(where, 0) + 1
                    if failures >= self.options.max_attempts:
                        context.dead_letter(
                            item, "refused", f"webhook answered {status} {failures} times"
                        )
                        self._failures.pop(where, None)
                    elif not context.wait(context.backoff(failures - 1)):
                        raise DestinationUnavailable("stopping")

    def close(self) -> None:
        self._drop()

"""The options of `vae sink postgres|mqtt|webhook`, apart from the sinks so `vae --help` stays
light: what every sink shares (``SinkOptions``) and each destination's own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pipeline.config import SettingsError, setting


@dataclass(frozen=True)
class SinkOptions:
    """Every sink: its consumer group, what it reads, how it batches and retries."""

    SECTION: ClassVar[str] = "sink"

    group_id: str = setting(
        "", "Consumer group of this sink (replicas share it); empty: vae-sink-<postgres|mqtt|…>."
    )
    detections: bool = setting(
        False, "Also read the detections topic (every frame's objects; far more records)."
    )
    batch_max: int = setting(500, "Records written (then committed) together at most.")
    batch_ms: int = setting(
        200, "How long a batch waits for more records after its first one, milliseconds."
    )
    backoff_ms: int = setting(
        500,
        "First wait before retrying a destination that is down (and a webhook's failed "
        "event); doubles to --max-backoff-ms, each wait a random half to whole of it.",
    )
    max_backoff_ms: int = setting(30_000, "Longest wait between retries, milliseconds.")
    unknown_schema_wait_ms: int = setting(
        60_000,
        "How long a record whose schema id cannot be resolved (registry down, a newer writer) "
        "is retried before it goes to the sinks' dead-letter topic.",
    )
    host: str = setting("127.0.0.1", "Address of the sink's /metrics, /healthz, /readyz.")
    port: int = setting(
        9103, "Port of /metrics, /healthz, /readyz (0: a free one, printed); one per sink."
    )
    max_poll_interval_ms: int = setting(
        10_000,
        "Consumer max.poll.interval.ms (also the group's rebalance timeout: the embedded "
        "broker completes a join only after it).",
    )
    session_timeout_ms: int = setting(
        10_000, "Consumer session.timeout.ms: how soon a dead sink's partitions move."
    )

    def validate(self) -> None:
        if self.batch_max < 1:
            raise SettingsError("VAE_SINK_BATCH_MAX must be at least 1")
        if self.backoff_ms < 1 or self.max_backoff_ms < self.backoff_ms:
            raise SettingsError("VAE_SINK_BACKOFF_MS must be at least 1 and at most the max")


@dataclass(frozen=True)
class PostgresOptions:
    """`vae sink postgres`: events, counts (and detections) upserted into PostgreSQL."""

    SECTION: ClassVar[str] = "sink_postgres"

    dsn: str = setting(
        "",
        "libpq connection string or URI, e.g. postgresql://vae@db:5432/vae.",
        flag="--dsn",
        secret=True,
        required=True,
    )
    schema: str = setting("vae", "PostgreSQL schema holding the sink's tables (created).")
    connect_timeout_s: int = setting(5, "Seconds to wait for a connection before retrying.")

    def validate(self) -> None:
        if not self.schema.replace("_", "").isalnum() or self.schema[0].isdigit():
            raise SettingsError(
                f"VAE_SINK_POSTGRES_SCHEMA={self.schema!r}: letters, digits and _ only"
            )


@dataclass(frozen=True)
class MqttOptions:
    """`vae sink mqtt`: events and retained live counts on an MQTT broker, QoS 1."""

    SECTION: ClassVar[str] = "sink_mqtt"

    host: str = setting("127.0.0.1", "MQTT broker host.", flag="--mqtt-host")
    port: int = setting(1883, "MQTT broker port (8883 with --tls).", flag="--mqtt-port")
    prefix: str = setting("vae", "Topic prefix: <prefix>/events, <prefix>/<stream>/….")
    client_id: str = setting(
        "", "MQTT client id (one per replica); empty: vae-sink-mqtt-<host>-<pid>."
    )
    username: str = setting("", "MQTT username.")
    password: str = setting("", "MQTT password.", secret=True)
    tls: bool = setting(False, "Connect with TLS (the system's CAs; SSL_CERT_FILE for another).")
    ack_timeout_s: float = setting(
        10.0, "How long a batch waits for the broker's PUBACKs before it is retried."
    )
    keepalive_s: int = setting(30, "MQTT keepalive, seconds.")

    def validate(self) -> None:
        if not self.prefix or any(c in self.prefix for c in "#+") or self.prefix.endswith("/"):
            raise SettingsError(f"VAE_SINK_MQTT_PREFIX={self.prefix!r}: no wildcards, no '/' last")


@dataclass(frozen=True)
class WebhookOptions:
    """`vae sink webhook`: one signed POST per record."""

    SECTION: ClassVar[str] = "sink_webhook"

    url: str = setting("", "Where each record is POSTed (http:// or https://).", required=True)
    secret: str = setting(
        "",
        "Key of the HMAC-SHA256 signature of each body (header X-VAE-Signature).",
        env="VAE_WEBHOOK_SECRET",
        secret=True,
        required=True,
    )
    max_attempts: int = setting(
        5,
        "Answers that are errors (any but 2xx, 429, 502, 503, 504) one record may get before "
        "it goes to the sinks' dead-letter topic and its offset is committed.",
    )
    timeout_s: float = setting(10.0, "Seconds one POST may take (connect and answer).")

    def validate(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise SettingsError(f"VAE_SINK_WEBHOOK_URL={self.url!r}: http:// or https:// only")
        if self.max_attempts < 1:
            raise SettingsError("VAE_SINK_WEBHOOK_MAX_ATTEMPTS must be at least 1")


# Each `vae sink NAME` and its destination's options.
SINK_OPTIONS: dict[str, type] = {
    "postgres": PostgresOptions,
    "mqtt": MqttOptions,
    "webhook": WebhookOptions,
}

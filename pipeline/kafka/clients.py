"""librdkafka configuration for every client, built from KafkaSettings.

The same code talks to Apache Kafka, Redpanda, Amazon MSK (TLS, SCRAM or IAM) and the
embedded Tansu broker: only these settings change.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from pipeline.config import KafkaSettings, SettingsError

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def bootstrap_of(kafka: KafkaSettings) -> str:
    """The configured bootstrap servers, or where `vae broker` listens by default."""
    return kafka.bootstrap or DEFAULT_BOOTSTRAP


def _extra_properties(raw: str) -> dict[str, str]:
    extra: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"VAE_KAFKA_CLIENT_CONFIG: {item!r} is not key=value")
        extra[key.strip()] = value.strip()
    return extra


def _msk_iam_token_callback(region: str) -> Any:
    """An oauth_cb that signs MSK IAM tokens with the process's AWS credentials (IRSA)."""
    try:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider  # type: ignore[import-not-found]
    except ImportError as exc:
        raise SettingsError(
            "VAE_KAFKA_SASL_MECHANISM=AWS_MSK_IAM needs the signer: "
            "pip install 'video-analytics-engine[msk]'"
        ) from exc

    def token(_config: str) -> tuple[str, float]:
        value, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return value, expiry_ms / 1000.0

    return token


def common_config(kafka: KafkaSettings, role: str) -> dict[str, Any]:
    """Settings every client shares: where the brokers are and how to authenticate."""
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap_of(kafka),
        "client.id": f"vae-{role}-{socket.gethostname()}-{os.getpid()}",
        "security.protocol": kafka.security_protocol,
        # Fail fast on a wrong address instead of retrying silently forever.
        "socket.connection.setup.timeout.ms": 10_000,
    }
    if kafka.ssl_ca_location:
        conf["ssl.ca.location"] = kafka.ssl_ca_location
    if kafka.sasl_mechanism == "AWS_MSK_IAM":
        region = kafka.aws_region or os.environ.get("AWS_REGION", "")
        if not region:
            raise SettingsError("AWS_MSK_IAM needs VAE_KAFKA_AWS_REGION (or AWS_REGION)")
        conf["sasl.mechanism"] = "OAUTHBEARER"
        conf["oauth_cb"] = _msk_iam_token_callback(region)
    elif kafka.sasl_mechanism:
        conf["sasl.mechanism"] = kafka.sasl_mechanism
        conf["sasl.username"] = kafka.sasl_username
        conf["sasl.password"] = kafka.sasl_password
    return _with_overrides(conf, kafka)


def _with_overrides(conf: dict[str, Any], kafka: KafkaSettings) -> dict[str, Any]:
    """VAE_KAFKA_CLIENT_CONFIG last: a property the user names wins over the role's own."""
    conf.update(_extra_properties(kafka.client_config))
    return conf


def producer_config(
    kafka: KafkaSettings,
    role: str,
    *,
    linger_ms: float,
    max_message_bytes: int,
    queue_kbytes: int = 131_072,
) -> dict[str, Any]:
    """An idempotent producer: acks=all, no duplicates on retry, order kept per partition."""
    conf = common_config(kafka, role)
    conf.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": linger_ms,
            # JPEG does not compress; spending CPU on it would only add latency.
            "compression.type": "none",
            "message.max.bytes": max_message_bytes,
            "queue.buffering.max.kbytes": queue_kbytes,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    return _with_overrides(conf, kafka)


def consumer_config(
    kafka: KafkaSettings,
    role: str,
    *,
    group_id: str,
    max_poll_interval_ms: int = 300_000,
    session_timeout_ms: int = 45_000,
    manual_offsets: bool = True,
    auto_commit: bool = True,
    fetch_max_bytes: int | None = None,
    queue_kbytes: int | None = None,
) -> dict[str, Any]:
    """A group consumer; with manual_offsets, only offsets the app stores get committed;
    without auto_commit, only what the app commits itself (synchronously, after its write).
    ``fetch_max_bytes`` and ``queue_kbytes`` bound what one fetch brings and what is
    prefetched (librdkafka's defaults: 50 MB and 64 MB)."""
    conf = common_config(kafka, role)
    conf.update(
        {
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            "max.poll.interval.ms": max_poll_interval_ms,
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": max(500, session_timeout_ms // 5),
            "enable.auto.commit": auto_commit,
            "auto.commit.interval.ms": 1000,
            "enable.auto.offset.store": not manual_offsets,
            "enable.partition.eof": False,
            # librdkafka's 500 ms default would be added to every frame's latency on an
            # idle partition; real-time frames want the broker to answer quickly.
            "fetch.wait.max.ms": 10,
        }
    )
    if fetch_max_bytes is not None:
        conf["fetch.max.bytes"] = fetch_max_bytes
    if queue_kbytes is not None:
        conf["queued.max.messages.kbytes"] = queue_kbytes
    return _with_overrides(conf, kafka)


def tail_config(kafka: KafkaSettings, role: str = "tail") -> dict[str, Any]:
    """A consumer that assigns partitions itself (no group membership, nothing committed)."""
    conf = common_config(kafka, role)
    conf.update(
        {
            # librdkafka wants a group id even for assign(); nothing is ever committed.
            "group.id": f"vae-{role}-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "fetch.wait.max.ms": 10,
            "fetch.min.bytes": 1,
        }
    )
    return _with_overrides(conf, kafka)

"""Kafka client configs: the worker's fetch bounds, and VAE_KAFKA_CLIENT_CONFIG winning."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer

from pipeline import config
from pipeline.kafka.clients import consumer_config, producer_config, tail_config


def test_the_workers_fetches_are_bounded_and_librdkafka_takes_the_config() -> None:
    settings = config.load(environ={})
    w = settings.worker
    conf = consumer_config(
        settings.kafka,
        "worker",
        group_id="g",
        fetch_max_bytes=w.fetch_max_bytes,
        queue_kbytes=w.fetch_queue_kbytes,
    )
    assert conf["fetch.max.bytes"] == w.fetch_max_bytes
    assert conf["queued.max.messages.kbytes"] == w.fetch_queue_kbytes
    Consumer(conf).close()  # librdkafka accepts the combination
    # Other consumers keep librdkafka's defaults.
    assert "fetch.max.bytes" not in consumer_config(settings.kafka, "sink", group_id="g")


def test_a_property_the_user_names_wins_over_the_roles_own() -> None:
    kafka = config.load(
        environ={"VAE_KAFKA_CLIENT_CONFIG": "fetch.wait.max.ms=500,linger.ms=20"}
    ).kafka
    assert consumer_config(kafka, "worker", group_id="g")["fetch.wait.max.ms"] == "500"
    assert tail_config(kafka)["fetch.wait.max.ms"] == "500"
    producer = producer_config(kafka, "gateway", linger_ms=2.0, max_message_bytes=1 << 20)
    assert producer["linger.ms"] == "20"
    Producer(producer).flush(0)  # librdkafka accepts it (a consumer property only warns)

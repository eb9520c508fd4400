"""Produce throughput of the embedded broker, memory storage against the durable S3 storage.

Both brokers are started here, one after the other, and written the same records by the
same idempotent acks=all producer, so the ratio compares storage engines on one machine in
one run. Small on purpose (a few hundred MB at most): `python scripts/bench_broker_storage.py
--out docs/bench/broker-storage.json`.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.config import KafkaSettings
from pipeline.kafka.admin import ensure_topics
from pipeline.kafka.clients import producer_config
from pipeline.kafka.embedded import EmbeddedBroker
from pipeline.kafka.producer import CallbackProducer
from pipeline.runtime import usable_cores
from pipeline.topics import Topic


def _produce(bootstrap: str, records: int, size: int) -> dict[str, float]:
    kafka = KafkaSettings(bootstrap=bootstrap)
    topic: Topic[Any] = Topic("bench-storage", "frame", 12, 1, {})
    ensure_topics(kafka, (topic,))
    producer = CallbackProducer(
        producer_config(kafka, "bench", linger_ms=5.0, max_message_bytes=4_194_304)
    )
    payload = bytes(size)
    failed: list[str] = []
    started = time.perf_counter()
    for i in range(records):
        producer.produce(
            topic.name,
            f"cam-{i % 100}".encode(),
            payload,
            lambda e: failed.append(e) if e else None,
        )
    left = producer.close(120)
    seconds = time.perf_counter() - started
    assert left == 0 and not failed, (left, failed[:3])
    return {
        "records": records,
        "record_bytes": size,
        "seconds": round(seconds, 3),
        "records_per_s": round(records / seconds, 1),
        "mb_per_s": round(records * size / 1e6 / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--size", type=int, default=100_000, help="bytes per record (a JPEG)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()}: {platform.processor() or platform.machine()}, "
        f"{usable_cores()} usable cores",
        "command": "python scripts/bench_broker_storage.py "
        f"--records {args.records} --size {args.size}",
    }
    with EmbeddedBroker() as memory:
        results["memory"] = _produce(memory.bootstrap, args.records, args.size)
    with (
        tempfile.TemporaryDirectory() as data,
        EmbeddedBroker(data_dir=Path(data)) as durable,
    ):
        results["durable_s3"] = _produce(durable.bootstrap, args.records, args.size)
    results["durable_over_memory"] = round(
        results["durable_s3"]["mb_per_s"] / results["memory"]["mb_per_s"], 3
    )
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Does the embedded broker (Tansu, in memory) fetch slower as its topics fill?

Outside the pipeline: records of 5 KB go into a fresh 12-partition topic of an embedded
broker in rounds, either one record per batch (what a producer with a short linger sends at
a few records per partition per second: the gateway at 500 streams x 1 fps) or in batches of
up to 1,000; after each round a new consumer reads 3,000 records from the topic's start
and 3,000 from near its end, and the rates are printed. `python
scripts/tansu_fetch_vs_batches.py --batch 1 --rounds 3 --per-round 50000` (about 1 min a
round); docs/reliability.md (the soak) says what it found.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import load
from pipeline.kafka.admin import ensure_topics
from pipeline.kafka.embedded import EmbeddedBroker
from pipeline.topics import engine_topics

PARTITIONS = 12
READ = 3000


def read_rate(bootstrap: str, topic: str, start_of: Callable[[int], int]) -> float:
    """Records/s a fresh consumer reads, 3,000 of them, from these offsets on."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"probe-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.max.bytes": 2_000_000,  # the worker's (VAE_WORKER_FETCH_MAX_BYTES)
        }
    )
    consumer.assign([TopicPartition(topic, p, start_of(p)) for p in range(PARTITIONS)])
    n, started = 0, time.perf_counter()
    while n < READ and time.perf_counter() - started < 120:
        n += sum(1 for m in consumer.consume(500, 1.0) if m.error() is None)
    rate = n / (time.perf_counter() - started)
    consumer.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1, help="records per batch at most")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-round", type=int, default=50_000)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="tansu-fetch-"))
    broker = EmbeddedBroker(log_file=data / "broker.log").start()
    try:
        topic = f"probe-{uuid.uuid4().hex[:8]}"
        settings = load(
            environ={"VAE_KAFKA_BOOTSTRAP": broker.bootstrap, "VAE_TOPICS_FRAMES": topic}
        )
        ensure_topics(settings.kafka, engine_topics(settings.topics).all())
        producer = Producer(
            {
                "bootstrap.servers": broker.bootstrap,
                "linger.ms": 0 if args.batch == 1 else 5,
                "batch.num.messages": args.batch,
            }
        )
        payload = os.urandom(5000)
        stored = 0
        print(f"records of 5 KB, at most {args.batch} per batch, {PARTITIONS} partitions")
        for _ in range(args.rounds):
            started = time.perf_counter()
            for i in range(args.per_round):
                while True:
                    try:
                        producer.produce(topic, payload, key=f"s{i % 500}".encode())
                        break
                    except BufferError:
                        producer.poll(0.05)
                producer.poll(0)
            producer.flush()
            stored += args.per_round
            produced = args.per_round / (time.perf_counter() - started)
            probe = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "probe"})
            high = [
                probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(PARTITIONS)
            ]
            probe.close()
            first = read_rate(broker.bootstrap, topic, lambda p: 0)
            near_end = [max(0, h - READ // 10) for h in high]
            last = read_rate(broker.bootstrap, topic, near_end.__getitem__)
            print(
                f"{stored:>8,} stored: produce {produced:,.0f}/s; read from the start "
                f"{first:,.0f}/s, from near the end {last:,.0f}/s",
                flush=True,
            )
    finally:
        broker.stop()


if __name__ == "__main__":
    main()

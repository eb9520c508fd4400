"""Does the durable embedded broker keep every record it acknowledged through a SIGKILL?

Outside the pipeline: the engine's producer settings (idempotent, acks=all) write small
records steadily to 12 partitions of `vae broker --durable`-style Tansu on its local S3;
after a few seconds the broker is SIGKILLed and started again on the same data while the
producer goes on. Then every partition is read from its start, and each record librdkafka
reported delivered is looked for. Prints, per run, the acked records that are missing and
the offsets their delivery reports gave (-1: the broker answered a retried batch as a
duplicate). `python scripts/durable_ack_loss.py --runs 5` (about 20 s a run);
docs/reliability.md says what it found and why.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import KafkaError, Message, Producer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import load
from pipeline.kafka.admin import ensure_topics
from pipeline.kafka.clients import producer_config
from pipeline.kafka.embedded import EmbeddedBroker
from pipeline.topics import engine_topics
from tests.kafka_tools import Record, read_topic


def one_run(idempotent: bool) -> tuple[int, list[tuple[bytes, int, int]]]:
    """Acked records in all, and the acked ones missing: (value, partition, acked offset)."""
    data = Path(tempfile.mkdtemp(prefix="durable-ack-loss-"))
    broker = EmbeddedBroker(log_file=data / "broker.log", data_dir=data / "store").start()
    try:
        settings = load(
            environ={
                "VAE_KAFKA_BOOTSTRAP": broker.bootstrap,
                "VAE_TOPICS_DETECTIONS": f"loss-{uuid.uuid4().hex[:8]}",
            }
        )
        ensure_topics(settings.kafka, engine_topics(settings.topics).all())
        topic = settings.topics.detections
        conf = producer_config(settings.kafka, "loss", linger_ms=1.0, max_message_bytes=1 << 20)
        conf["enable.idempotence"] = idempotent
        producer = Producer(conf)
        acked: dict[bytes, tuple[int, int]] = {}

        def delivered(error: KafkaError | None, message: Message) -> None:
            value, partition, offset = message.value(), message.partition(), message.offset()
            if error is None and value is not None:
                acked[value] = (
                    -1 if partition is None else partition,
                    -1 if offset is None else offset,
                )

        stop = threading.Event()

        def produce() -> None:
            i = 0
            while not stop.is_set():
                producer.produce(topic, b"v%07d" % i, b"k%d" % (i % 12), on_delivery=delivered)
                producer.poll(0)
                i += 1
                time.sleep(0.002)
            producer.flush(120)

        writer = threading.Thread(target=produce)
        writer.start()
        time.sleep(3 + 2 * random.random())
        broker.kill()
        time.sleep(1)
        broker.start()
        time.sleep(4)
        stop.set()
        writer.join()
        seen: set[bytes] = set()
        read = [0]

        def every_acked(records: list[Record]) -> bool:
            seen.update(r.value for r in records[read[0] :])
            read[0] = len(records)
            return set(acked) <= seen

        read_topic(settings.kafka, topic, every_acked, timeout=20)
        missing = sorted((v, *acked[v]) for v in acked if v not in seen)
        return len(acked), missing
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-idempotence", action="store_true", help="enable.idempotence=false")
    args = parser.parse_args()
    losing = 0
    for run in range(1, args.runs + 1):
        total, missing = one_run(not args.no_idempotence)
        losing += bool(missing)
        shown = ", ".join(f"{v.decode()} (partition {p}, acked offset {o})" for v, p, o in missing)
        print(f"run {run}: {total} acked, {len(missing)} missing{': ' + shown if missing else ''}")
    print(f"{losing} of {args.runs} runs lost acked records")


if __name__ == "__main__":
    main()

"""The sinks' pure pieces: keys, batches, JSON, MQTT topics, signatures, options."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from connectors.sinks.base import backoff_delay
from connectors.sinks.mqtt import MqttSink, messages_of, topic_part
from connectors.sinks.options import MqttOptions, PostgresOptions, WebhookOptions
from connectors.sinks.postgres import counts_row, event_row
from connectors.sinks.records import Batch, SinkItem, body
from connectors.sinks.webhook import sign, verify
from pipeline.config import SettingsError
from pipeline.runtime import free_port
from pipeline.shell.cli import main
from tests.records import counts, event


def item(kind: Any, value: Any, offset: int = 0, partition: int = 0) -> SinkItem:
    return SinkItem(kind, f"t-{kind}", partition, offset, b"k", b"", dict(value))


def test_keys_are_the_event_id_the_window_and_the_frame() -> None:
    e = event("cam-1", 3)
    assert item("event", e).ident() == e["event_id"]
    c = counts("cam-1", 2, 4, crossed_in=1)
    assert item("counts", c).ident() == f"counts/cam-1/door/line/person/{c['window_start_us']}/4"
    d = {"stream_id": "cam-1", "frame_id": 9, "capture_ts_us": 0, "objects": []}
    assert item("detections", d).ident() == "detections/cam-1/9"


def test_a_batch_keeps_the_highest_revision_of_each_window() -> None:
    batch = Batch(
        1,
        [
            item("counts", counts("a", 0, 0, crossed_in=1), 0),
            item("counts", counts("a", 0, 2, crossed_in=3), 1),
            item("counts", counts("a", 0, 1, crossed_in=2), 2),  # older, read later
            item("counts", counts("a", 1, 0, crossed_in=7), 3),
            item("counts", counts("a", 1, 0, crossed_in=8), 4),  # a tie: the later record
        ],
    )
    kept = {(i.value or {})["window_start_us"]: i.value for i in batch.latest_counts()}
    assert [v["crossed_in"] for v in kept.values() if v] == [3, 8]


def test_positions_skip_revoked_partitions_and_point_past_the_last_record() -> None:
    records = [item("event", event("a", n), offset=10 + n, partition=n % 2) for n in range(4)]
    records[3].revoked = True  # partition 1, offset 13
    batch = Batch(1, records)
    assert batch.positions() == {("t-event", 0): 13, ("t-event", 1): 12}
    assert batch.live() == 3
    assert [i.offset for i in batch.todo()] == [10, 11, 12]


def test_json_carries_the_record_its_type_and_readable_times() -> None:
    e = event("cam-1", 0)
    payload = json.loads(body(item("event", e)))
    assert payload["type"] == "event" and payload["event_id"] == e["event_id"]
    assert payload["start_time"] == "2023-11-14T22:13:20Z"
    c = json.loads(body(item("counts", counts("cam-1", 1, 0))))
    assert (c["type"], c["window_start"]) == ("counts", "2023-11-14T22:14:20Z")


def test_rows_hold_timestamps_in_utc() -> None:
    e = event("cam-1", 1)
    row = event_row(dict(e))
    assert row[0] == e["event_id"] and row[9].timestamp() == e["start_ts_us"] / 1e6
    c = counts("cam-1", 0, 2, crossed_in=5)
    assert counts_row(dict(c))[4].timestamp() == c["window_start_us"] / 1e6


def test_mqtt_layout_events_and_retained_counts() -> None:
    [(topic, payload, retain)] = messages_of("vae", item("event", event("cam-1", 0)))
    assert (topic, retain) == ("vae/events", False)
    assert json.loads(payload)["stream_id"] == "cam-1"
    line = messages_of("vae", item("counts", counts("cam-1", 0, 0, crossed_in=4, crossed_out=1)))
    assert [(t, p, r) for t, p, r in line[:2]] == [
        ("vae/cam-1/door/person/in", b"4", True),
        ("vae/cam-1/door/person/out", b"1", True),
    ]
    assert line[2][0] == "vae/cam-1/door/person/window" and line[2][2] is True
    zone = messages_of(
        "site/vae",
        item(
            "counts", counts("c", 0, 0, kind="zone", rule="bench", label="dog", entries=2, peak=1)
        ),
    )
    assert [(t, p) for t, p, _ in zone[:2]] == [
        ("site/vae/c/bench/dog/entries", b"2"),
        ("site/vae/c/bench/dog/occupancy", b"1"),
    ]
    assert topic_part("a/b+c#") == "a_b_c_" and topic_part("") == "_"


def test_mqtt_keeps_the_newest_window_retained() -> None:
    sink = MqttSink(MqttOptions())
    newer = item("counts", counts("c", 2, 0))
    older = item("counts", counts("c", 1, 5))
    later_revision = item("counts", counts("c", 2, 1))
    assert sink._counts_current(newer)
    assert not sink._counts_current(older)  # a late revision of an older window
    assert sink._counts_current(later_revision)


def test_the_signature_is_hmac_sha256_of_the_exact_body() -> None:
    payload = b'{"type":"event","event_id":"x"}'
    header = sign("s3cret", payload)
    assert header == "sha256=" + hmac.new(b"s3cret", payload, hashlib.sha256).hexdigest()
    assert verify("s3cret", payload, header)
    assert not verify("s3cret", payload + b" ", header)
    assert not verify("other", payload, header)


def test_backoff_is_jittered_doubling_and_capped() -> None:
    for attempt in range(12):
        delay = backoff_delay(attempt, 0.5, 30.0)
        ceiling = min(30.0, 0.5 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (lambda: MqttOptions(prefix="vae/#"), "no wildcards"),
        (lambda: MqttOptions(prefix="vae/"), "no wildcards"),
        (lambda: WebhookOptions(url="ftp://x", secret="s"), "http:// or https://"),
        (lambda: WebhookOptions(url="http://x", secret="s", max_attempts=0), "at least 1"),
        (lambda: PostgresOptions(dsn="x", schema="vae; drop"), "letters, digits"),
    ],
)
def test_bad_options_are_refused_naming_the_variable(options: Any, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        options().validate()


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["sink", "postgres"], "--dsn (or VAE_SINK_POSTGRES_DSN) is required"),
        (["sink", "webhook"], "--url (or VAE_SINK_WEBHOOK_URL) is required"),
        (["sink", "webhook", "--url", "http://h/x"], "--secret (or VAE_WEBHOOK_SECRET)"),
    ],
)
def test_a_sink_without_its_destination_says_what_to_set(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    for name in ("VAE_SINK_POSTGRES_DSN", "VAE_SINK_WEBHOOK_URL", "VAE_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exit_code:
        main(argv)
    assert exit_code.value.code == 2
    assert named in capsys.readouterr().err


def test_vae_up_refuses_an_unknown_sink(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_code:
        main(["up", "--sink", "kafka"])
    assert exit_code.value.code == 2
    assert "--sink 'kafka': one of postgres, mqtt, webhook" in capsys.readouterr().err


def test_vae_up_checks_a_sinks_settings_before_starting_anything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAE_SINK_")}
    env.update(VAE_GATEWAY_PORT=str(free_port()), VAE_BROKER_PORT=str(free_port()))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "up", "--sink", "webhook", "--log-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert "--sink webhook: --url (or VAE_SINK_WEBHOOK_URL) is required" in done.stderr
    assert not list(tmp_path.iterdir())  # nothing started, no log written

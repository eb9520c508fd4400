"""vae loadgen against a real gateway, worker and the embedded broker, at small scale."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.kafka.embedded import EmbeddedBroker
from pipeline.runtime import free_port
from tests.conftest import REPO, Service, authed, launch_gateway, ws_url

pytestmark = pytest.mark.integration


def _loadgen(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "loadgen", "--no-live", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def _metric(service: Service, sample: str) -> float:
    with urllib.request.urlopen(authed(service.http + "/metrics"), timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[-1])
    return 0.0


def test_every_frame_is_acked_and_the_report_adds_up(
    start_gateway: Callable[..., Service], tmp_path: Path
) -> None:
    gateway = start_gateway()
    report_path, plot_path = tmp_path / "report.json", tmp_path / "plot.png"
    run = _loadgen(
        *("--gateway", ws_url(gateway), "--streams", "50", "--fps", "5", "--duration", "5"),
        *("--procs", "2", "--source", "synthetic:320x240", "--drain", "10"),
        *("--report", str(report_path), "--plot", str(plot_path)),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report: dict[str, Any] = json.loads(report_path.read_text())
    counts = report["counts"]
    # 50 streams x 5 fps x 5 s slots: each is sent, or skipped (and counted) when loadgen
    # on a loaded machine is a whole period late for it, as a camera would.
    assert counts["sent"] + counts["skipped_slots"] == 50 * 5 * 5
    assert counts["sent"] >= 50 * 5 * 5 // 2
    assert counts["acked"] == counts["sent"]
    assert counts["rejected"] == counts["lost"] == counts["disconnects"] == 0
    assert counts["connected"] == 50
    assert report["consistent"] is True
    assert counts["sent"] == counts["acked"] + counts["rejected"] + counts["lost"]
    gateway_ms = report["latency_ms"]["gateway"]
    assert gateway_ms["count"] == counts["acked"]
    assert 0 < gateway_ms["p50"] <= gateway_ms["p99"] <= gateway_ms["p99.9"] <= gateway_ms["max"]
    # The ack round trip contains the gateway's own latency.
    assert report["latency_ms"]["ack_rtt"]["p50"] >= gateway_ms["p50"]
    # The broker's share never exceeds the whole.
    assert report["latency_ms"]["broker_ack"]["p50"] <= gateway_ms["p50"]
    assert sum(row["sent"] for row in report["series"]) == counts["sent"]
    # The gateway counted the same frames.
    assert _metric(gateway, "vae_gateway_frames_produced_total") == counts["acked"]
    assert _metric(gateway, "vae_gateway_broker_ack_seconds_count") == counts["acked"]
    assert plot_path.read_bytes()[:4] == b"\x89PNG"
    assert "every frame accounted for" in run.stdout


def test_subscribe_measures_end_to_end_through_a_worker(
    start_gateway: Callable[..., Service],
    start_worker: Callable[..., Service],
    tmp_path: Path,
) -> None:
    gateway = start_gateway()
    start_worker()
    report_path = tmp_path / "report.json"
    run = _loadgen(
        *("--gateway", ws_url(gateway), "--streams", "4", "--fps", "2", "--duration", "4"),
        *("--subscribe", "--drain", "20", "--report", str(report_path)),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(report_path.read_text())
    counts = report["counts"]
    assert counts["sent"] + counts["skipped_slots"] == 4 * 2 * 4
    assert counts["sent"] == counts["acked"] > 0
    assert counts["detected"] == counts["acked"] and counts["undetected"] == 0
    e2e = report["latency_ms"]["end_to_end"]
    assert e2e["count"] == counts["detected"]
    # Capture -> detections includes the gateway's part and a model run.
    assert e2e["p50"] > report["latency_ms"]["gateway"]["p50"]


def test_refused_frames_fail_the_run_past_the_error_threshold(
    start_gateway: Callable[..., Service], tmp_path: Path
) -> None:
    gateway = start_gateway(VAE_GATEWAY_MAX_FRAME_BYTES="4096")  # every ~20 KB frame too large
    report_path = tmp_path / "report.json"
    run = _loadgen(
        *("--gateway", ws_url(gateway), "--streams", "3", "--fps", "2", "--duration", "2"),
        *("--source", "synthetic", "--report", str(report_path)),
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "above --max-error-rate" in run.stdout + run.stderr
    report = json.loads(report_path.read_text())
    assert report["rejected_by_reason"] == {"frame_too_large": report["counts"]["sent"]}
    assert report["counts"]["acked"] == 0 and report["consistent"] is True


def test_unreachable_gateway_exits_2_with_the_reason() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = _loadgen("--gateway", f"ws://127.0.0.1:{port}", "--streams", "2", "--duration", "1")
    assert run.returncode == 2
    assert "gateway unreachable at ws://127.0.0.1:" in run.stderr
    assert "Traceback" not in run.stderr


def test_bad_arguments_are_refused_before_anything_runs() -> None:
    run = _loadgen("--gateway", "http://127.0.0.1:8080", "--streams", "2")
    assert run.returncode == 2 and "must start with ws://" in run.stderr
    run = _loadgen("--streams", "0")
    assert run.returncode == 2 and "--streams must be at least 1" in run.stderr


def test_entering_a_started_broker_does_not_start_a_second_one() -> None:
    with EmbeddedBroker().start() as broker:
        pid = broker.pid
        assert pid is not None and broker.running()
        assert Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "RS"
    assert not Path(f"/proc/{pid}").exists() or " Z " in Path(f"/proc/{pid}/stat").read_text()


def test_bench_gateway_writes_its_rows_ceiling_and_doc_section(tmp_path: Path) -> None:
    """`vae bench gateway` at toy scale: a fresh broker and gateway per row (one gateway
    process, then two under a parent: their CPU is the parent's and its children's), and
    the ceiling."""
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nkept\n")
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pipeline", "bench", "gateway", "--streams", "20,40"),
            *("--fps", "10", "--duration", "3", "--ceiling-seconds", "1", "--source", "synthetic"),
            *("--out", str(tmp_path / "out"), "--markdown", str(doc)),
            *("--gateway-processes", "1,2"),
            *("--plot", str(tmp_path / "bench.png")),
        ],
        capture_output=True,
        text=True,
        timeout=420,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["ceiling_frames_per_s"] > 0
    rows = results["rows"]
    assert [(row["streams"], row["processes"]) for row in rows] == [
        (20, 1),
        (20, 2),
        (40, 1),
        (40, 2),
    ]
    for row in rows:
        counts = row["report"]["counts"]
        assert counts["sent"] + counts["skipped_slots"] == row["streams"] * 10 * 3
        assert counts["sent"] == counts["acked"] > 0
        assert row["gateway_cpu"] > 0 and row["broker_cpu"] > 0
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n")
    assert "<!-- bench:gateway:start -->" in text and "| 40 x 10 | 3 |" in text
    assert "| 40 x 10, 2 procs | 3 |" in text
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"


async def test_loadgen_reconnects_and_resends_across_a_gateway_restart(
    stack: Any, tmp_path: Path
) -> None:
    """The gateway is SIGKILLed mid-run (stopped first, so frames are in flight) and started
    again on its port: loadgen's streams reconnect, resend what was unanswered, lose none."""
    port = free_port()
    gateway = launch_gateway(stack, port=port)
    report_path = tmp_path / "report.json"
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipeline", "loadgen", "--no-live",
        "--gateway", ws_url(gateway), "--streams", "5", "--fps", "5", "--duration", "12",
        "--source", "synthetic:320x240", "--drain", "20", "--report", str(report_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=REPO,
    )  # fmt: skip
    produced = "vae_gateway_frames_produced_total"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while gateway.metric(produced) < 20:
        assert loop.time() < deadline, gateway.log()
        await asyncio.sleep(0.1)
    gateway.process.send_signal(signal.SIGSTOP)
    await asyncio.sleep(0.5)  # frames sent into the stopped gateway: in flight, unanswered
    gateway.process.send_signal(signal.SIGKILL)
    gateway.process.wait()
    await asyncio.to_thread(launch_gateway, stack, True, port)
    output, _ = await asyncio.wait_for(run.communicate(), 120)
    assert run.returncode == 0, output.decode()
    counts = json.loads(report_path.read_text())["counts"]
    assert counts["disconnects"] >= 5 and counts["reconnects"] >= 5, counts  # each stream
    assert counts["resent"] >= 1, counts
    assert counts["lost"] == counts["rejected"] == 0, counts
    assert counts["acked"] == counts["sent"] > 0, counts

"""`vae bench soak`: the engine under a steady load for a long time; does anything grow?

What `vae up` runs, each a child process of this one: the embedded broker (in memory, or
durable), `vae gateway`, one `vae worker`, one `vae analytics` (a line and a zone on every
stream), and `vae loadgen` as the cameras. Every few seconds: each process's resident
memory (VmRSS from /proc; loadgen's with its children) and the lag of the workers' and the
analytics' consumer groups (high watermarks minus committed positions, an admin query).

The load is a still scene by default (the sample photo): motion gating then infers each
stream once per VAE_WORKER_KEYFRAME_S and passes the other frames on with their stream's
last objects, so one CPU worker keeps up with hundreds of streams (it infers 20-45
frames/s); VAE_WORKER_MAX_FRAME_AGE_MS sheds, and counts, what it reaches too late.

The verdict: a straight line fitted to each process's memory over the second half of the
load (after warm-up); a service (gateway, worker, analytics) whose slope exceeds
--max-growth MB/min fails the run, as does a lag that keeps growing. The broker keeps
every record (this Tansu enforces no retention), so its memory grows by design, by about
the bytes it is sent: reported beside that rate, not judged.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import sys
import tempfile
import textwrap
import time
import urllib.request
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import config
from pipeline.auth.tokens import issue
from pipeline.children import Child, spawn_vae
from pipeline.children import stop as stop_children
from pipeline.kafka.admin import ensure_topics, group_lag
from pipeline.kafka.embedded import EmbeddedBroker
from pipeline.runtime import (
    descendants,
    free_port,
    pid_cpu_seconds,
    pid_rss_bytes,
    usable_cores,
)
from pipeline.shell.bench.analytics import bench_rules
from pipeline.shell.bench.options import BenchSoakOptions
from pipeline.shell.up import scrape
from pipeline.topics import engine_topics

SERVICES = ("gateway", "worker", "analytics")  # judged on their memory
PROCESSES = ("broker", *SERVICES, "loadgen")
LAG_GROWTH_PER_MIN = 60.0  # a lag growing faster than 1 record/s means a stage falls behind
# A trend must also add up, over the fitted half, to more than noise: a few MB of allocator
# steps, or ten seconds of the input in lag (short runs are judged by these floors).
MIN_GROWTH_MB = 10.0
MIN_LAG_GROWTH_S = 10.0
START_MARK, END_MARK = "<!-- soak:start -->", "<!-- soak:end -->"

RULES = bench_rules("soak-*")


def _default_source() -> str:
    from connectors import samples

    return str(samples.locate("dog.jpg"))


def _wait(what: str, ready: Any, child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.running():
            raise RuntimeError(f"{child.name} exited ({child.returncode}):\n{child.tail()}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} not within {timeout:.0f} s:\n{child.tail()}")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as reply:
        return bool(reply.status == 200)


def _log_says(child: Child, text: str) -> bool:
    return child.log_path is not None and text in child.log_path.read_text("utf-8", "replace")


class _Run:
    """The children of one soak and what is sampled from them."""

    def __init__(self, o: BenchSoakOptions, out: Path) -> None:
        self.o, self.out = o, out
        self.secret = secrets.token_urlsafe(32)
        self.token = issue(
            self.secret, ("ingest:*", "subscribe:*", "metrics"), int(o.duration) + 3600
        )
        self.broker = EmbeddedBroker(
            log_file=out / "broker.log", data_dir=out / "broker-data" if o.durable else None
        )
        self.children: dict[str, Child] = {}
        self.gateway_port = free_port()
        self.worker_port = free_port()
        self.rules = Path(tempfile.mkdtemp(prefix="vae-soak-")) / "rules.yaml"
        self.env = {
            **os.environ,
            "VAE_KAFKA_BOOTSTRAP": self.broker.bootstrap,
            "VAE_AUTH_SECRET": self.secret,
            "VAE_AUTH_TOKEN": self.token,
            "VAE_GATEWAY_HOST": "127.0.0.1",
            "VAE_GATEWAY_PORT": str(self.gateway_port),
            "VAE_WORKER_METRICS_PORT": str(self.worker_port),
            "VAE_WORKER_KEYFRAME_S": str(o.keyframe_s),
            "VAE_WORKER_MAX_FRAME_AGE_MS": str(o.max_frame_age_ms),
            "VAE_ANALYTICS_RULES": str(self.rules),
            "VAE_LOG_LEVEL": "INFO",
        }
        self.settings = config.load(environ=self.env)

    def start(self) -> None:
        o = self.o
        self.broker.start()
        self.rules.write_text(RULES)
        ensure_topics(self.settings.kafka, engine_topics(self.settings.topics).all())
        for name in SERVICES:
            self.children[name] = spawn_vae(name, [name], env=self.env, log_dir=self.out)
        http = f"http://127.0.0.1:{self.gateway_port}"
        _wait("gateway ready", lambda: _http_ok(http + "/readyz"), self.children["gateway"], 60)
        worker_http = f"http://127.0.0.1:{self.worker_port}"
        _wait("worker in its group", lambda: _http_ok(worker_http + "/readyz"),
              self.children["worker"], 180)  # fmt: skip
        _wait("analytics ready", lambda: _log_says(self.children["analytics"], "[^Worker]: Ready"),
              self.children["analytics"], 180)  # fmt: skip
        source = o.source or _default_source()
        self.children["loadgen"] = spawn_vae(
            "loadgen",
            ["loadgen", "--gateway", f"ws://127.0.0.1:{self.gateway_port}",
             "--streams", str(o.streams), "--fps", str(o.fps), "--duration", str(o.duration),
             "--source", source, "--width", str(o.width), "--prefix", "soak",
             "--max-error-rate", "1", "--no-live", "--report", str(self.out / "loadgen.json"),
             "--plot", str(self.out / "loadgen.png")],
            env=self.env, log_dir=self.out,
        )  # fmt: skip

    def pids(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        if self.broker.pid is not None:
            out["broker"] = [self.broker.pid, *descendants(self.broker.pid)]
            store_pid = self.broker.store_pid
            if store_pid is not None:  # SeaweedFS under --durable: the broker's disk
                out["broker"] += [store_pid, *descendants(store_pid)]
        for name, child in self.children.items():
            out[name] = [child.pid, *descendants(child.pid)]
        return out

    def sample(self, t: float) -> dict[str, Any]:
        topics, groups = self.settings.topics, self.settings
        pids = self.pids()
        rss = {
            name: round(sum(pid_rss_bytes(p) for p in group) / 2**20, 2)
            for name, group in pids.items()
        }
        cpu = {name: round(sum(map(pid_cpu_seconds, group)), 2) for name, group in pids.items()}
        lag = {
            "worker": group_lag(groups.kafka, groups.worker.group_id, topics.frames,
                                topics.frames_partitions),
            "analytics": group_lag(groups.kafka, groups.analytics.group_id, topics.detections,
                                   topics.detections_partitions),
        }  # fmt: skip
        return {"t": round(t, 1), "rss_mb": rss, "cpu_s": cpu, "lag": lag}

    def counters(self) -> dict[str, float]:
        found: dict[str, float] = {}
        wanted = {
            "worker": (
                "vae_worker_frames_consumed_total",
                "vae_worker_frames_processed_total",
                "vae_worker_frames_inferred_total",
                "vae_worker_frames_gated_total",
                "vae_worker_frames_skipped_total{reason=stale}",
            ),
            "gateway": (
                "vae_gateway_frames_received_total",
                "vae_gateway_frames_produced_total",
                "vae_gateway_bytes_received_total",
                "vae_gateway_frames_rejected_total",
            ),
        }
        ports = {"worker": self.worker_port, "gateway": self.gateway_port}
        for service, names in wanted.items():
            try:
                metrics = scrape(
                    f"http://127.0.0.1:{ports[service]}/metrics", self.token, timeout=5, labels=True
                )
            except OSError:
                continue
            for name in names:
                found[name] = metrics.get(name, 0.0)
        return found

    def stop(self) -> None:
        stop_children(list(self.children.values()), grace_s=20, first=("loadgen",))
        self.broker.stop()


def _slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute; 0 with fewer than 3."""
    if len(points) < 3:
        return 0.0
    t = np.array([p[0] for p in points]) / 60.0
    v = np.array([p[1] for p in points])
    if np.ptp(t) == 0:
        return 0.0
    return float(np.polyfit(t, v, 1)[0])


def verdict(report: dict[str, Any]) -> dict[str, Any]:
    """Slopes over the second half of the load, and whether they pass."""
    o = report["config"]
    half, end = o["duration"] / 2, o["duration"]
    samples = [s for s in report["samples"] if half <= s["t"] <= end]
    rss_slope = {
        name: round(_slope_per_min([(s["t"], s["rss_mb"][name]) for s in samples
                                    if name in s["rss_mb"]]), 3)
        for name in PROCESSES
    }  # fmt: skip
    lag_slope = {
        name: round(_slope_per_min([(s["t"], s["lag"][name]) for s in samples]), 1)
        for name in ("worker", "analytics")
    }
    counters = report.get("counters", {})
    shed = int(counters.get("vae_worker_frames_skipped_total{reason=stale}", 0))
    ingest_mb = counters.get("vae_gateway_bytes_received_total", 0.0) / 2**20
    window_min = (end - half) / 60
    lag_floor = o["streams"] * o["fps"] * MIN_LAG_GROWTH_S
    leaking = [
        n
        for n in SERVICES
        if rss_slope[n] > o["max_growth"] and rss_slope[n] * window_min > MIN_GROWTH_MB
    ]
    behind = [
        n for n, v in lag_slope.items() if v > LAG_GROWTH_PER_MIN and v * window_min > lag_floor
    ]
    cpu_share = {}  # of one core, over the load
    timed = [s for s in report["samples"] if s["t"] <= end and "cpu_s" in s]
    if len(timed) >= 2 and timed[-1]["t"] > timed[0]["t"]:
        span = timed[-1]["t"] - timed[0]["t"]
        cpu_share = {
            n: round((timed[-1]["cpu_s"].get(n, 0) - timed[0]["cpu_s"].get(n, 0)) / span, 2)
            for n in PROCESSES
            if n in timed[-1]["cpu_s"] and n in timed[0]["cpu_s"]
        }
    lines = []
    lines.append(
        "services flat: " + ", ".join(f"{n} {rss_slope[n]:+.2f} MB/min" for n in SERVICES)
        if not leaking
        else "GROWING: " + ", ".join(f"{n} {rss_slope[n]:+.2f} MB/min" for n in leaking)
    )
    lines.append(
        "lag bounded" if not behind else "LAG GROWING: " + ", ".join(
            f"{n} {lag_slope[n]:+.0f} records/min" for n in behind)
    )  # fmt: skip
    if shed:
        lines.append(f"worker shed {shed} stale frames (VAE_WORKER_MAX_FRAME_AGE_MS)")
    loadgen = report.get("loadgen", {})
    if loadgen.get("exit_code"):
        lines.append(f"loadgen exit {loadgen['exit_code']}")
    return {
        "fit_from_s": half,
        "rss_slope_mb_per_min": rss_slope,
        "lag_slope_per_min": lag_slope,
        "broker_ingest_mb_per_min": round(ingest_mb / (o["duration"] / 60), 2)
        if o["duration"]
        else 0.0,
        "shed_frames": shed,
        "cpu_cores": cpu_share,
        "services_ok": not leaking,
        "lag_ok": not behind,
        "summary": "; ".join(lines),
    }


def run(o: BenchSoakOptions) -> int:
    """`vae bench soak`."""
    if o.from_json:
        report = json.loads(Path(o.from_json).read_text())
        report["verdict"] = verdict(report)  # this version's thresholds
        if report.get("failure"):
            report["verdict"]["summary"] = (
                f"FAILED: {report['failure']}; " + (report["verdict"]["summary"])
            )
        _publish(report, o)
        print(report["verdict"]["summary"])
        return 0  # rendered: the verdict was the run's to give
    out = Path(o.out)
    out.mkdir(parents=True, exist_ok=True)
    soak = _Run(o, out)
    samples: list[dict[str, Any]] = []
    started_at = datetime.now(UTC)
    failure = ""
    try:
        soak.start()
        start = time.monotonic()
        loadgen = soak.children["loadgen"]
        print(f"soak: {o.streams} streams x {o.fps:g} fps for {o.duration:.0f} s; logs in {out}")
        next_sample = start
        while loadgen.running():
            dead = [c.name for c in soak.children.values() if not c.running() and c is not loadgen]
            if dead:
                failure = f"{', '.join(dead)} exited during the run"
                break
            if time.monotonic() >= next_sample:
                samples.append(soak.sample(time.monotonic() - start))
                s = samples[-1]
                print(
                    f"  {s['t']:7.0f} s  "
                    + "  ".join(f"{k} {v:.0f} MB" for k, v in s["rss_mb"].items())
                    + f"  lag worker {s['lag']['worker']} analytics {s['lag']['analytics']}",
                    flush=True,
                )
                next_sample += o.sample_s
            time.sleep(0.2)
        counters = soak.counters()
    finally:
        soak.stop()
    loadgen_code = soak.children["loadgen"].returncode if "loadgen" in soak.children else None
    report = _report(o, out, samples, counters, started_at, loadgen_code, failure)
    (out / "soak.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(report, out / "soak.png")
    _publish(report, o)
    print(f"\n{report['verdict']['summary']}")
    print(f"\nsoak.json, soak.png, loadgen.json and every process's log: {out}/")
    if not o.markdown:
        print(
            "Record it in docs/reliability.md (its JSON beside the doc, its plot under "
            f"docs/img): make soak-record SOAK_OUT={out}"
        )
    ok = not failure and report["verdict"]["services_ok"] and report["verdict"]["lag_ok"]
    return 0 if ok else 1


def _report(
    o: BenchSoakOptions,
    out: Path,
    samples: list[dict[str, Any]],
    counters: dict[str, float],
    started_at: datetime,
    loadgen_code: int | None,
    failure: str,
) -> dict[str, Any]:
    loadgen: dict[str, Any] = {"exit_code": loadgen_code}
    with_report = out / "loadgen.json"
    if with_report.exists():
        saved = json.loads(with_report.read_text())
        loadgen.update(
            counts=saved.get("counts", {}), frame_size=saved.get("config", {}).get("frame_size")
        )
    report: dict[str, Any] = {
        "config": {
            **asdict(o),
            "source": o.source or "the sample photo (dog.jpg)",
            "started": started_at.strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.node()} ({platform.machine()}, {usable_cores()} cores)",
            "python": sys.version.split()[0],
            "command": "vae bench soak " + " ".join(sys.argv[3:]),
        },
        "failure": failure,
        "samples": samples,
        "counters": counters,
        "loadgen": loadgen,
    }
    report["verdict"] = verdict(report)
    if failure:
        report["verdict"]["summary"] = f"FAILED: {failure}; " + report["verdict"]["summary"]
    return report


def _publish(report: dict[str, Any], o: BenchSoakOptions) -> None:
    if o.json:
        Path(o.json).parent.mkdir(parents=True, exist_ok=True)
        Path(o.json).write_text(json.dumps(report, indent=1) + "\n")
    if o.plot:
        plot(report, Path(o.plot))
    if o.markdown:
        doc = Path(o.markdown)
        text = doc.read_text()
        start, end = f"<!-- {o.section}:start -->", f"<!-- {o.section}:end -->"
        head, found, rest = text.partition(start)
        if not found:
            raise SystemExit(f"{doc}: no {start} ... {end} section to rewrite")
        _, _, tail = rest.partition(end)
        picture = os.path.relpath(o.plot, doc.parent) if o.plot else ""
        json_at = os.path.relpath(o.json, doc.parent) if o.json else ""
        doc.write_text(head + start + "\n" + markdown(report, picture, json_at) + end + tail)
        print(f"{doc}: section {o.section} rewritten")


def markdown(report: dict[str, Any], picture: str = "", json_at: str = "") -> str:
    """The soak section of docs/reliability.md for one run."""
    c, v = report["config"], report["verdict"]
    samples = report["samples"]
    first = samples[0] if samples else {"rss_mb": {}, "lag": {}}
    last = [s for s in samples if s["t"] <= c["duration"]][-1:] or [first]
    lines = [
        f"Run: {c['started']} on {c['machine']}, `{c['command'].strip()}`: {c['streams']} "
        f"streams x {c['fps']:g} fps for {c['duration'] / 60:.0f} min of "
        f"{c['source']} at width {c['width']}"
        + (f" ({report['loadgen']['frame_size']})" if report["loadgen"].get("frame_size") else "")
        + f", broker {'durable' if c['durable'] else 'in memory'}, "
        f"VAE_WORKER_KEYFRAME_S={c['keyframe_s']:g}, "
        f"VAE_WORKER_MAX_FRAME_AGE_MS={c['max_frame_age_ms']}"
        + (f"; raw samples: [{Path(json_at).name}]({json_at})" if json_at else "")
        + ".",
        "",
        f"**Verdict**: {v['summary']}.",
        "",
        "| process | RSS at start (MB) | at the end of the load | slope over the second "
        "half (MB/min) | CPU (cores) |",
        "|---|---|---|---|---|",
    ]
    for name in PROCESSES:
        if name not in first["rss_mb"]:
            continue
        note = (
            f" (sent {v['broker_ingest_mb_per_min']:.1f} MB/min of frames: kept by design)"
            if name == "broker"
            else ""
        )
        cpu = v.get("cpu_cores", {}).get(name)
        lines.append(
            f"| {name} | {first['rss_mb'][name]:.0f} | {last[0]['rss_mb'].get(name, 0):.0f} | "
            f"{v['rss_slope_mb_per_min'][name]:+.2f}{note} | "
            f"{'' if cpu is None else f'{cpu:.2f}'} |"
        )
    lag_max = {n: max((s["lag"][n] for s in samples), default=0) for n in ("worker", "analytics")}
    lines += [
        "",
        "| consumer group | lag at the end of the load | highest | slope over the second "
        "half (records/min) |",
        "|---|---|---|---|",
    ]
    for name in ("worker", "analytics"):
        lines.append(
            f"| {name} | {last[0]['lag'].get(name, 0)} | {lag_max[name]} | "
            f"{v['lag_slope_per_min'][name]:+.0f} |"
        )
    counts = report["loadgen"].get("counts", {})
    counters = report["counters"]
    lines += [
        "",
        f"loadgen: {counts.get('sent', 0)} frames sent, {counts.get('acked', 0)} acked, "
        f"{counts.get('rejected', 0)} refused, {counts.get('lost', 0)} lost; worker: "
        f"{counters.get('vae_worker_frames_processed_total', 0):.0f} processed, "
        f"{counters.get('vae_worker_frames_inferred_total', 0):.0f} inferred, "
        f"{counters.get('vae_worker_frames_gated_total', 0):.0f} gated, "
        f"{v['shed_frames']} shed as stale.",
        "",
    ]
    if picture:
        lines += [f"![RSS and lag over the soak]({picture})", ""]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    """Services' memory, the broker's memory, and the lag over time, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples, c = report["samples"], report["config"]
    minutes = [s["t"] / 60 for s in samples]
    fig, (services, broker, lag) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    for name in (*SERVICES, "loadgen"):
        services.plot(minutes, [s["rss_mb"].get(name, 0) for s in samples], label=name)
    services.set_ylabel("resident memory (MB)")
    services.legend(loc="upper left", fontsize=8, ncol=4)
    broker.plot(minutes, [s["rss_mb"].get("broker", 0) for s in samples], color="tab:gray",
                label="broker (keeps every record)")  # fmt: skip
    broker.set_ylabel("broker memory (MB)")
    broker.legend(loc="upper left", fontsize=8)
    for name in ("worker", "analytics"):
        lag.plot(minutes, [s["lag"][name] for s in samples], label=f"{name} group lag")
    lag.set_ylabel("consumer lag (records)")
    lag.set_xlabel("minutes into the run")
    lag.legend(loc="upper left", fontsize=8)
    for ax in (services, broker, lag):
        ax.axvline(c["duration"] / 120, color="tab:red", lw=0.8, ls="--")
        ax.grid(True, alpha=0.3)
    services.set_title(
        f"vae bench soak: {c['streams']} streams x {c['fps']:g} fps, {c['started']} "
        "(slopes fitted after the dashed line)\n"
        + textwrap.fill(report["verdict"]["summary"], 130),
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)

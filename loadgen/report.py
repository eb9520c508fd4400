"""The merged result of a run: counts, latency percentiles, per-second series; JSON and table.

Process results are merged by summing counters and adding histograms bucket by bucket,
so every percentile here is of all frames, never an average of per-process percentiles.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from loadgen.histogram import PERCENTILES, LatencyHistogram
from loadgen.stats import LATENCIES, SERIES_DIGITS

COUNTS = (
    "connected",
    "sent",
    "acked",
    "rejected",
    "lost",
    "detected",
    "undetected",
    "detections_dropped",
    "detections_repeated",
    "disconnects",
    "reconnects",
    "resent",
    "unmatched_errors",
    "skipped_slots",
)


@dataclass
class Report:
    """One run: what was asked, what happened, how fast."""

    config: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    connect_failures: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, LatencyHistogram] = field(default_factory=dict)
    series: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return self.counts.get("sent", 0)

    def errors(self) -> int:
        """Frames that did not make it: refused, lost, and (with --subscribe) undetected."""
        undetected = self.counts.get("undetected", 0) if self.config.get("subscribe") else 0
        return self.counts.get("rejected", 0) + self.counts.get("lost", 0) + undetected

    def error_rate(self) -> float:
        return self.errors() / self.sent if self.sent else 0.0

    def consistent(self) -> bool:
        """Every frame sent is accounted for exactly once: acked, refused or lost."""
        c = self.counts
        return c.get("sent", 0) == c.get("acked", 0) + c.get("rejected", 0) + c.get("lost", 0)

    def throughput(self) -> float:
        """Acked frames per second over the sending period."""
        duration = float(self.config.get("duration", 0)) or 1.0
        return self.counts.get("acked", 0) / duration

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "counts": self.counts,
            "rejected_by_reason": dict(self.rejected_by_reason),
            "connect_failures": dict(self.connect_failures),
            "error_rate": round(self.error_rate(), 6),
            "consistent": self.consistent(),
            "acked_per_s": round(self.throughput(), 1),
            "latency_ms": {name: h.summary() for name, h in self.latencies.items()},
            "latency_definitions": LATENCIES,
            "series": self.series,
        }

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def render(self, console: Console) -> None:
        """The end-of-run tables."""
        counts = Table(title="loadgen: frames")
        counts.add_column("count")
        counts.add_column("value", justify="right")
        counts.add_row("streams", f"{self.config.get('streams', 0):,}")
        for name in COUNTS:
            counts.add_row(name.replace("_", " "), f"{self.counts.get(name, 0):,}")
        console.print(counts)
        if self.rejected_by_reason:
            console.print(f"refused by reason: {dict(self.rejected_by_reason)}")
        if self.connect_failures:
            console.print(f"[red]connections that failed: {dict(self.connect_failures)}[/red]")
        latency = Table(title="loadgen: latency (ms)")
        latency.add_column("measure")
        for column in ("count", *(f"p{q:g}" for q in PERCENTILES), "max"):
            latency.add_column(column, justify="right")
        for name, h in self.latencies.items():
            s = h.summary()
            latency.add_row(
                name,
                f"{h.count:,}",
                *(f"{s[f'p{q:g}']:.2f}" for q in PERCENTILES),
                f"{s['max']:.2f}",
            )
        console.print(latency)
        console.print(
            f"{self.throughput():,.0f} frames/s acked; error rate {self.error_rate():.4%} "
            f"({self.errors():,} of {self.sent:,}); "
            + ("every frame accounted for" if self.consistent() else "[red]COUNTS DISAGREE[/red]")
        )


def merge(config: dict[str, Any], results: list[dict[str, Any]]) -> Report:
    """Sum the processes' counters and add their histograms."""
    report = Report(config)
    counts: Counter[str] = Counter()
    seconds: dict[int, dict[str, Any]] = {}
    for result in results:
        for name in COUNTS:
            if name != "rejected":
                counts[name] += int(result.get(name, 0))
        report.rejected_by_reason.update(result.get("rejected", {}))
        report.connect_failures.update(result.get("connect_failures", {}))
        for name, blob in result.get("latencies", {}).items():
            h = LatencyHistogram.decode(blob)
            if name in report.latencies:
                report.latencies[name].add(h)
            else:
                report.latencies[name] = h
        for index, second in result.get("seconds", {}).items():
            merged = seconds.setdefault(
                int(index), {"sent": 0, "acked": 0, "rejected": 0, "detected": 0, "h": {}}
            )
            for key in ("sent", "acked", "rejected", "detected"):
                merged[key] += second[key]
            for name, blob in second["latencies"].items():
                merged["h"].setdefault(name, []).append(blob)  # decoded one second at a time
    counts["rejected"] = sum(report.rejected_by_reason.values())
    report.counts = {name: counts[name] for name in COUNTS}
    report.latencies = {n: report.latencies[n] for n in LATENCIES if n in report.latencies}
    for index in sorted(seconds):
        s = seconds[index]
        row: dict[str, Any] = {k: s[k] for k in ("sent", "acked", "rejected", "detected")}
        row["t"] = index
        for name, blobs in s["h"].items():
            h = LatencyHistogram.decode(blobs[0], SERIES_DIGITS)
            for blob in blobs[1:]:
                h.add(LatencyHistogram.decode(blob, SERIES_DIGITS))
            row[name] = {f"p{q:g}": round(h.percentile_ms(q), 3) for q in (50.0, 99.0, 99.9)}
        report.series.append(row)
    return report

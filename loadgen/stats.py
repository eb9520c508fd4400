"""What one loadgen process counts and measures, and the picklable forms it reports in.

A process keeps cumulative counters and full-precision histograms for the final report,
one low-precision histogram per second of the run for the plot, and a "window" histogram
that is handed to the parent and reset at each progress tick for the live display.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from loadgen.histogram import LatencyHistogram

# Latencies measured per frame: name -> what it is (also the report's legend).
LATENCIES: dict[str, str] = {
    "gateway": "gateway latency: receipt -> broker ack, as the gateway's ack reports it",
    "broker_ack": "its share outside the gateway's loop: produce() -> delivery report",
    "ack_rtt": "ack round trip at the client: send -> ack received",
    "end_to_end": "capture -> detections received on the subscribe socket",
    "send_lag": "how late loadgen sent each frame after its scheduled slot (loadgen's own load)",
}
SERIES_DIGITS = 2  # per-second histograms only feed the plot: 1% precision is plenty


@dataclass
class Second:
    """One second of the run: throughput and latency histograms."""

    sent: int = 0
    acked: int = 0
    rejected: int = 0
    detected: int = 0
    latencies: dict[str, LatencyHistogram] = field(
        default_factory=lambda: {name: LatencyHistogram(SERIES_DIGITS) for name in LATENCIES}
    )


@dataclass
class ProcessStats:
    """Counters and histograms of one process's streams."""

    connected: int = 0
    sent: int = 0
    acked: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    detected: int = 0
    detections_dropped: int = 0
    detections_repeated: int = 0
    connect_failures: Counter[str] = field(default_factory=Counter)
    disconnects: int = 0
    reconnects: int = 0
    resent: int = 0  # frames sent again on a new socket after the old one dropped
    unmatched_errors: int = 0
    skipped_slots: int = 0
    lost: int = 0
    undetected: int = 0
    latencies: dict[str, LatencyHistogram] = field(
        default_factory=lambda: {name: LatencyHistogram() for name in LATENCIES}
    )
    window: dict[str, LatencyHistogram] = field(
        default_factory=lambda: {name: LatencyHistogram(SERIES_DIGITS) for name in LATENCIES}
    )
    seconds: dict[int, Second] = field(default_factory=dict)

    def second(self, index: int) -> Second:
        found = self.seconds.get(index)
        if found is None:
            found = self.seconds[index] = Second()
        return found

    def observe(self, name: str, value_ms: float, second: int) -> None:
        """One latency sample into the run's, the window's and the second's histograms."""
        self.latencies[name].record_ms(value_ms)
        self.window[name].record_ms(value_ms)
        if second >= 0:
            self.second(second).latencies[name].record_ms(value_ms)

    def counters(self) -> dict[str, int]:
        """Cumulative counts for progress snapshots (cheap to pickle)."""
        return {
            "connected": self.connected,
            "sent": self.sent,
            "acked": self.acked,
            "rejected": sum(self.rejected.values()),
            "detected": self.detected,
            "disconnects": self.disconnects,
            "resent": self.resent,
            "connect_failures": sum(self.connect_failures.values()),
        }

    def take_window(self) -> dict[str, bytes]:
        """The window's histograms (encoded), then start a new window."""
        encoded = {name: h.encode() for name, h in self.window.items() if h.count}
        for h in self.window.values():
            h.reset()
        return encoded

    def result(self) -> dict[str, object]:
        """Everything the parent merges into the report (picklable, histograms encoded)."""
        return {
            "connected": self.connected,
            "sent": self.sent,
            "acked": self.acked,
            "rejected": dict(self.rejected),
            "detected": self.detected,
            "detections_dropped": self.detections_dropped,
            "detections_repeated": self.detections_repeated,
            "connect_failures": dict(self.connect_failures),
            "disconnects": self.disconnects,
            "reconnects": self.reconnects,
            "resent": self.resent,
            "unmatched_errors": self.unmatched_errors,
            "skipped_slots": self.skipped_slots,
            "lost": self.lost,
            "undetected": self.undetected,
            "latencies": {name: h.encode() for name, h in self.latencies.items() if h.count},
            "seconds": {
                index: {
                    "sent": s.sent,
                    "acked": s.acked,
                    "rejected": s.rejected,
                    "detected": s.detected,
                    "latencies": {n: h.encode() for n, h in s.latencies.items() if h.count},
                }
                for index, s in sorted(self.seconds.items())
            },
        }

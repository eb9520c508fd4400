"""What one loadgen process counts and measures, and the picklable forms it reports in.

A process keeps cumulative counters and full-precision histograms for the final report,
one low-precision histogram per second of the run for the plot, and a "window" histogram
that is handed to the parent and reset at each progress tick for the live display.

A live HdrHistogram holds its whole bucket array (about 22 KB at 2 digits), so the
per-second ones of a long run would grow by some 100 KB a second; only the last
``LIVE_SECONDS`` seconds stay live, older ones are kept encoded (tens of bytes each) and
decoded again should a late sample (an ack after a reconnect) still arrive for them.
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
LIVE_SECONDS = 64  # seconds whose histograms stay decoded; older ones are kept encoded


@dataclass
class Second:
    """One second of the run: throughput and latency histograms."""

    sent: int = 0
    acked: int = 0
    rejected: int = 0
    detected: int = 0
    live: dict[str, LatencyHistogram] = field(default_factory=dict)
    packed: dict[str, bytes] = field(default_factory=dict)

    def histogram(self, name: str, spare: list[LatencyHistogram]) -> LatencyHistogram:
        """The second's histogram of one latency (a spare one reused, or decoded again)."""
        found = self.live.get(name)
        if found is None:
            found = self.live[name] = spare.pop() if spare else LatencyHistogram(SERIES_DIGITS)
            blob = self.packed.pop(name, b"")
            if blob:
                found.add(LatencyHistogram.decode(blob, SERIES_DIGITS))
        return found

    def pack(self, spare: list[LatencyHistogram]) -> None:
        """Keep the histograms encoded, a few dozen bytes each; the emptied ones become
        spares (reused rather than freed: hdrh's histograms sit in a reference cycle with
        their encoder, which only the cyclic collector frees)."""
        for name, h in self.live.items():
            if h.count:
                self.packed[name] = h.encode()
            h.reset()
            spare.append(h)
        self.live.clear()

    def encoded(self) -> dict[str, bytes]:
        return {**self.packed, **{n: h.encode() for n, h in self.live.items() if h.count}}


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
    live_seconds: set[int] = field(default_factory=set)  # seconds with decoded histograms
    spare: list[LatencyHistogram] = field(default_factory=list)  # emptied by packing

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
            self.second(second).histogram(name, self.spare).record_ms(value_ms)
            self.live_seconds.add(second)
            if len(self.live_seconds) > LIVE_SECONDS:
                self._pack_oldest()

    def _pack_oldest(self) -> None:
        """Pack the older half of the live seconds (amortised: once per LIVE_SECONDS / 2)."""
        for index in sorted(self.live_seconds)[: LIVE_SECONDS // 2]:
            self.seconds[index].pack(self.spare)
            self.live_seconds.discard(index)

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
                    "latencies": s.encoded(),
                }
                for index, s in sorted(self.seconds.items())
            },
        }

"""Each stream's window counts as the gateway knows them from vae.counts (GET
/v1/streams/{id}/counts): every window's latest revision, bounded, and the totals."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from pipeline.serde import CountsRecord

_METRICS = ("crossed_in", "crossed_out", "entries")


class CountsBoard:
    """Per stream: each window's latest revision (the last ``keep`` windows) and totals."""

    def __init__(self, keep_windows: int = 60, max_streams: int = 10_000) -> None:
        self.keep_windows = keep_windows
        self.max_streams = max_streams
        # stream -> window start -> (rule, kind, label) -> record
        self._windows: OrderedDict[str, dict[int, dict[tuple[str, str, str], CountsRecord]]] = (
            OrderedDict()
        )
        self._folded: dict[str, dict[tuple[str, str, str], dict[str, int]]] = {}

    def apply(self, record: CountsRecord) -> None:
        stream = record["stream_id"]
        windows = self._windows.setdefault(stream, {})
        self._windows.move_to_end(stream)
        key = (record["rule"], record["kind"], record["label"])
        window = windows.setdefault(record["window_start_us"], {})
        held = window.get(key)
        if held is None or record["revision"] >= held["revision"]:
            window[key] = record
        while len(windows) > self.keep_windows:  # fold the oldest window into the totals
            oldest = min(windows)
            for k, r in windows.pop(oldest).items():
                _fold(self._folded.setdefault(stream, {}), k, r)
        while len(self._windows) > self.max_streams:
            gone, _ = self._windows.popitem(last=False)
            self._folded.pop(gone, None)

    def summary(self, stream_id: str) -> dict[str, Any] | None:
        windows = self._windows.get(stream_id)
        if windows is None:
            return None
        totals = {k: dict(v) for k, v in self._folded.get(stream_id, {}).items()}
        for start in sorted(windows):
            for k, r in windows[start].items():
                _fold(totals, k, r)
        return {
            "stream_id": stream_id,
            "totals": [
                {"rule": r, "kind": kind, "label": label, **values}
                for (r, kind, label), values in sorted(totals.items())
            ],
            "windows": [
                {k: v for k, v in rec.items() if k != "stream_id"}
                for start in sorted(windows)
                for _, rec in sorted(windows[start].items())
            ],
        }


def _fold(
    totals: dict[tuple[str, str, str], dict[str, int]], key: tuple[str, str, str], r: CountsRecord
) -> None:
    t = totals.setdefault(key, {"crossed_in": 0, "crossed_out": 0, "entries": 0,
                                "peak_occupancy": 0})  # fmt: skip
    for m in _METRICS:
        t[m] += int(r[m])  # type: ignore[literal-required]
    t["peak_occupancy"] = max(t["peak_occupancy"], r["peak_occupancy"])

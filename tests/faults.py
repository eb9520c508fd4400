"""The fault table: each fault test records one row; the session prints them all and keeps
them in artifacts/faults.json, from which `make test-faults` updates docs/reliability.md."""

from __future__ import annotations

import json
from collections.abc import Collection, Hashable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

COLUMNS = ("fault", "sent", "acked", "detected", "lost", "duplicated", "recovery s")


@dataclass(frozen=True)
class FaultRow:
    fault: str
    sent: int  # frames the clients handed over (or records written)
    acked: int  # of them, acked by the gateway (in the broker)
    detected: int  # distinct frames whose detections came out
    lost: int  # frames the design promises and that never came out
    duplicated: int  # detections records beyond one per frame
    recovery_s: float  # from the fault to the first detection of a frame it delayed

    @classmethod
    def tally(
        cls,
        fault: str,
        *,
        sent: int,
        acked: int,
        wanted: Collection[Hashable],
        came_out: Sequence[Hashable],
        recovery_s: float,
    ) -> FaultRow:
        """A row counted from what should come out (``wanted``: ids) and what did
        (``came_out``: an id per output, so a repeat is there twice)."""
        distinct = set(came_out)
        return cls(
            fault,
            sent=sent,
            acked=acked,
            detected=len(distinct & set(wanted)),
            lost=len(set(wanted) - distinct),
            duplicated=len(came_out) - len(distinct),
            recovery_s=recovery_s,
        )


@dataclass
class FaultTable:
    rows: list[FaultRow] = field(default_factory=list)

    def record(self, row: FaultRow) -> None:
        self.rows.append(row)

    def markdown(self) -> str:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for r in self.rows:
            lines.append(
                f"| {r.fault} | {r.sent} | {r.acked} | {r.detected} | {r.lost} | "
                f"{r.duplicated} | {r.recovery_s:.1f} |"
            )
        return "\n".join(lines)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([asdict(r) for r in self.rows], indent=2) + "\n")


TABLE = FaultTable()

"""Put the last fault-suite run's table (artifacts/faults.json) into docs/reliability.md,
between its markers, with the command and the date."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faults import FaultRow, FaultTable

START, END = "<!-- faults:start -->", "<!-- faults:end -->"


def main() -> None:
    source, doc = Path(sys.argv[1]), Path(sys.argv[2])
    table = FaultTable([FaultRow(**row) for row in json.loads(source.read_text())])
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"{START}\nLast run: {stamp} on {platform.node()} ({platform.machine()}, "
        f"{os.cpu_count()} cores), `make test-faults`.\n\n{table.markdown()}\n{END}"
    )
    text = doc.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    doc.write_text(head + block + tail)
    print(f"{doc}: {len(table.rows)} rows")


if __name__ == "__main__":
    main()

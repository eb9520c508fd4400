"""Rewrite the settings tables in README.md from their declarations (run by `make docs`)."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.shell.cli import markdown

START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def rendered(readme: str) -> str:
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{markdown()}\n{END}{tail}"


def main() -> int:
    path = Path(__file__).resolve().parents[1] / "README.md"
    text = path.read_text()
    new = rendered(text)
    if "--check" in sys.argv:
        return 0 if new == text else 1
    path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())

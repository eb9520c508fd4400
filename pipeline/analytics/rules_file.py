"""Reading the rules document from a file (the parsing is pipeline.protocol.rules)."""

from __future__ import annotations

from pipeline.protocol.rules import Rules, RulesError, parse_rules


def load_rules(path: str) -> Rules:
    """Rules from a YAML file; an empty path means no rules."""
    if not path:
        return Rules()
    try:
        with open(path, encoding="utf-8") as f:  # noqa: PTH123 - a plain path string
            text = f.read()
    except OSError as exc:
        raise RulesError(f"cannot read rules file {path}: {exc.strerror}") from exc
    return parse_rules(text)

"""What a .dockerignore leaves in the build context, by Docker's rules.

Patterns are read in order and the last one that matches a path decides (a `!` pattern
re-includes). A pattern that matches a directory matches everything under it. `*` and
`?` stay within one path segment, `**` spans any number of segments.
"""

from __future__ import annotations

import re
from pathlib import Path


def _regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


class DockerIgnore:
    """The rules of one .dockerignore file."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = line[1:].strip() if include else line
            pattern = pattern.strip("/")
            self.rules.append((include, _regex(pattern)))

    @classmethod
    def of(cls, path: Path) -> DockerIgnore:
        return cls(path.read_text() if path.exists() else "")

    def included(self, relative: str) -> bool:
        """True when the file or folder at this context-relative path is sent to the builder."""
        parts = relative.strip("/").split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        keep = True
        for include, regex in self.rules:
            if any(regex.match(candidate) for candidate in candidates):
                keep = include
        return keep

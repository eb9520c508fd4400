"""Scopes a token grants and what they allow; stream globs are matched whole, case-sensitively.

``ingest:<glob>`` sends frames of the matching streams, ``subscribe:<glob>`` watches them
(detections, latest frame, frame history, listing), ``metrics`` reads /metrics and
``admin`` changes state. A glob is fnmatch syntax (``*``, ``?``, ``[...]``) over the whole
stream id, so ``subscribe:cam-1`` never yields ``cam-10`` or ``cam-2``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

INGEST = "ingest"
SUBSCRIBE = "subscribe"
METRICS = "metrics"
ADMIN = "admin"
_WITH_GLOB = (INGEST, SUBSCRIBE)
_PLAIN = (METRICS, ADMIN)
SCOPE_RULE = "ingest:<stream glob>, subscribe:<stream glob>, metrics or admin"


class BadScope(ValueError):
    """A scope string outside SCOPE_RULE."""


def check_scope(scope: str) -> str:
    """Return the scope unchanged, or raise BadScope saying what is allowed."""
    kind, sep, glob = scope.partition(":")
    if kind in _PLAIN and not sep:
        return scope
    if kind in _WITH_GLOB and sep and glob and not any(c.isspace() for c in glob):
        return scope
    raise BadScope(f"bad scope {scope!r}: use {SCOPE_RULE}")


@dataclass(frozen=True, slots=True)
class Grant:
    """What one verified token allows. Unknown scopes (another service's) are ignored."""

    subject: str
    scopes: frozenset[str]

    @classmethod
    def of(cls, scopes: Iterable[str], subject: str = "") -> Grant:
        return cls(subject, frozenset(scopes))

    def _globs(self, kind: str) -> list[str]:
        prefix = kind + ":"
        return [
            s[len(prefix) :] for s in self.scopes if s.startswith(prefix) and len(s) > len(prefix)
        ]

    def may_ingest(self, stream_id: str) -> bool:
        return any(fnmatchcase(stream_id, g) for g in self._globs(INGEST))

    def may_subscribe(self, stream_id: str) -> bool:
        return any(fnmatchcase(stream_id, g) for g in self._globs(SUBSCRIBE))

    def may_subscribe_some(self) -> bool:
        """Whether any stream may be watched (a ``*`` subscription is then filtered)."""
        return bool(self._globs(SUBSCRIBE))

    def may_subscribe_all(self) -> bool:
        """Whether every stream, present and future, is visible (a ``subscribe:*`` scope)."""
        return "*" in self._globs(SUBSCRIBE)

    @property
    def metrics(self) -> bool:
        return METRICS in self.scopes

    @property
    def admin(self) -> bool:
        return ADMIN in self.scopes

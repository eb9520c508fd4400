"""The analytics rules document: which lines and zones apply to which streams.

Part of the gateway's protocol (pure, no I/O) because the rules travel through it: the
gateway validates a document a client saves (WS /v1/rules) before publishing it, and
`vae analytics` parses the same document from its rules file or the rules topic.

Shape (YAML; more keys may be added, these work as written)::

    streams:
      "door-*":                          # glob over stream ids
        anchor: bottom_center            # the point of a box tested against lines and zones
        lines:
          - name: door
            points: [[0.5, 0.0], [0.5, 1.0]]   # x, y as fractions of frame width and height
            classes: [person]
        zones:
          - name: lobby
            polygon: [[0.1, 0.1], [0.4, 0.1], [0.4, 0.9], [0.1, 0.9]]
            classes: [person, car]
            loiter_s: 10

Optional keys beyond those: per stream ``track_lost_s`` (seconds of event time after which
an unseen track is lost); per line and zone ``min_frames`` (hysteresis: frames an object must
be seen on a new side, or inside/outside, before it counts) and ``margin`` (a fraction of
the frame's width: a point nearer the line or the zone's edge is on neither side); per zone
``loiter_update_s`` (the least time between two loitering updates). Every error names the
key at fault, as a path such as ``streams."door-*".lines[0].points``; unknown keys are
errors too, so a typo never passes silently.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

Point = tuple[float, float]

ANCHORS = (
    "bottom_center",
    "center",
    "top_center",
    "bottom_left",
    "bottom_right",
    "top_left",
    "top_right",
    "center_left",
    "center_right",
)


# How near a line or a zone's edge (a fraction of the frame's width) a point is on neither
# side: the few pixels a standing object's box jitters between inferences.
DEFAULT_MARGIN = 0.005


def wants(classes: frozenset[str] | None, label: str) -> bool:
    """Whether a rule limited to these classes (None: all) applies to this label."""
    return classes is None or label in classes


class RulesError(ValueError):
    """The rules file cannot be used; the message names the key at fault."""


@dataclass(frozen=True)
class LineRule:
    name: str
    a: Point
    b: Point
    classes: frozenset[str] | None  # None: every class
    min_frames: int = 3
    margin: float = DEFAULT_MARGIN


@dataclass(frozen=True)
class ZoneRule:
    name: str
    polygon: tuple[Point, ...]
    classes: frozenset[str] | None
    loiter_s: float = 0.0  # 0: no loitering events
    loiter_update_s: float = 5.0
    min_frames: int = 3
    margin: float = DEFAULT_MARGIN


@dataclass(frozen=True)
class StreamRules:
    pattern: str
    anchor: str = "bottom_center"
    lines: tuple[LineRule, ...] = ()
    zones: tuple[ZoneRule, ...] = ()
    track_lost_s: float = 2.0


@dataclass(frozen=True)
class Rules:
    streams: tuple[StreamRules, ...] = ()

    def for_stream(self, stream_id: str) -> StreamRules | None:
        """The first pattern, in file order, that matches the stream id."""
        for rules in self.streams:
            if fnmatch.fnmatchcase(stream_id, rules.pattern):
                return rules
        return None


_STREAM_KEYS = {"anchor", "lines", "zones", "track_lost_s"}
_LINE_KEYS = {"name", "points", "classes", "min_frames", "margin"}
_ZONE_KEYS = {
    "name", "polygon", "classes", "loiter_s", "loiter_update_s", "min_frames", "margin",
}  # fmt: skip


def parse_rules(text: str) -> Rules:
    """Rules from YAML text; raises RulesError naming the bad key."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"rules are not valid YAML: {exc}") from exc
    if document is None:
        return Rules()
    doc = _mapping(document, "rules")
    _known(doc, {"streams"}, "rules")
    streams = _mapping(doc.get("streams", {}) or {}, "streams")
    return Rules(tuple(_stream(str(k), v, f'streams."{k}"') for k, v in streams.items()))


def rules_document(text: str) -> dict[str, Any]:
    """The rules document as JSON-ready data, for clients without a YAML parser (the viewer).

    Stream patterns become a list in document order (``{"pattern": glob, ...its keys}``), so
    the order that decides which pattern applies survives JSON; each entry keeps exactly the
    keys written (no defaults filled in), so a client can add a rule and save the document
    back without changing the rest. Raises RulesError as parse_rules does.
    """
    parse_rules(text)  # validated first: what follows only reshapes a good document
    document = yaml.safe_load(text) or {}
    streams = document.get("streams") or {}
    return {"streams": [{"pattern": str(k), **(v or {})} for k, v in streams.items()]}


def dump_rules(rules: Rules) -> str:
    """YAML text that parse_rules reads back to the same rules (for saving from the API)."""
    streams: dict[str, Any] = {}
    for s in rules.streams:
        entry: dict[str, Any] = {"anchor": s.anchor, "track_lost_s": s.track_lost_s}
        entry["lines"] = [
            {
                "name": line.name,
                "points": [list(line.a), list(line.b)],
                **({"classes": sorted(line.classes)} if line.classes is not None else {}),
                "min_frames": line.min_frames,
                "margin": line.margin,
            }
            for line in s.lines
        ]
        entry["zones"] = [
            {
                "name": z.name,
                "polygon": [list(p) for p in z.polygon],
                **({"classes": sorted(z.classes)} if z.classes is not None else {}),
                "loiter_s": z.loiter_s,
                "loiter_update_s": z.loiter_update_s,
                "min_frames": z.min_frames,
                "margin": z.margin,
            }
            for z in s.zones
        ]
        streams[s.pattern] = entry
    return str(yaml.safe_dump({"streams": streams}, sort_keys=False))


def _stream(pattern: str, value: object, where: str) -> StreamRules:
    body = _mapping(value or {}, where)
    _known(body, _STREAM_KEYS, where)
    anchor = body.get("anchor", "bottom_center")
    if anchor not in ANCHORS:
        raise RulesError(f"{where}.anchor: {anchor!r} is not one of {', '.join(ANCHORS)}")
    lines = tuple(
        _line(v, f"{where}.lines[{i}]")
        for i, v in enumerate(_sequence(body.get("lines", []) or [], f"{where}.lines"))
    )
    zones = tuple(
        _zone(v, f"{where}.zones[{i}]")
        for i, v in enumerate(_sequence(body.get("zones", []) or [], f"{where}.zones"))
    )
    names = [line.name for line in lines] + [zone.name for zone in zones]
    for name in names:
        if names.count(name) > 1:
            raise RulesError(f"{where}: the name {name!r} is used twice (lines and zones)")
    lost = _number(body.get("track_lost_s", 2.0), f"{where}.track_lost_s", minimum=0.0)
    return StreamRules(pattern, str(anchor), lines, zones, lost)


def _line(value: object, where: str) -> LineRule:
    body = _mapping(value, where)
    _known(body, _LINE_KEYS, where)
    points = _points(_required(body, "points", where), f"{where}.points")
    if len(points) != 2:
        raise RulesError(f"{where}.points: a line has exactly 2 points, not {len(points)}")
    if points[0] == points[1]:
        raise RulesError(f"{where}.points: the two points are the same")
    return LineRule(
        name=_name(body, where),
        a=points[0],
        b=points[1],
        classes=_classes(body, where),
        min_frames=int(_number(body.get("min_frames", 3), f"{where}.min_frames", minimum=1)),
        margin=_margin(body, where),
    )


def _zone(value: object, where: str) -> ZoneRule:
    body = _mapping(value, where)
    _known(body, _ZONE_KEYS, where)
    polygon = _points(_required(body, "polygon", where), f"{where}.polygon")
    if len(polygon) < 3:
        raise RulesError(f"{where}.polygon: a zone needs at least 3 points, not {len(polygon)}")
    return ZoneRule(
        name=_name(body, where),
        polygon=polygon,
        classes=_classes(body, where),
        loiter_s=_number(body.get("loiter_s", 0.0), f"{where}.loiter_s", minimum=0.0),
        loiter_update_s=_number(
            body.get("loiter_update_s", 5.0), f"{where}.loiter_update_s", minimum=0.1
        ),
        min_frames=int(_number(body.get("min_frames", 3), f"{where}.min_frames", minimum=1)),
        margin=_margin(body, where),
    )


def _margin(body: Mapping[str, Any], where: str) -> float:
    margin = _number(body.get("margin", DEFAULT_MARGIN), f"{where}.margin", minimum=0.0)
    if margin >= 0.5:
        raise RulesError(f"{where}.margin: {margin} is a fraction of the frame's width, < 0.5")
    return margin


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RulesError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _sequence(value: object, where: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise RulesError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _known(body: Mapping[str, Any], keys: set[str], where: str) -> None:
    for key in body:
        if key not in keys:
            raise RulesError(f"{where}.{key}: unknown key (known: {', '.join(sorted(keys))})")


def _required(body: Mapping[str, Any], key: str, where: str) -> object:
    if key not in body:
        raise RulesError(f"{where}.{key}: missing")
    return body[key]


def _name(body: Mapping[str, Any], where: str) -> str:
    name = _required(body, "name", where)
    if not isinstance(name, str) or not name:
        raise RulesError(f"{where}.name: expected a non-empty string")
    return name


def _classes(body: Mapping[str, Any], where: str) -> frozenset[str] | None:
    if "classes" not in body or body["classes"] is None:
        return None
    classes = _sequence(body["classes"], f"{where}.classes")
    if not all(isinstance(c, str) and c for c in classes):
        raise RulesError(f"{where}.classes: expected a list of class labels (strings)")
    return frozenset(classes)


def _number(value: object, where: str, *, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RulesError(f"{where}: expected a number, got {value!r}")
    if value < minimum:
        raise RulesError(f"{where}: must be at least {minimum:g}, got {value!r}")
    return float(value)


def _points(value: object, where: str) -> tuple[Point, ...]:
    points: list[Point] = []
    for i, p in enumerate(_sequence(value, where)):
        if (
            not isinstance(p, list)
            or len(p) != 2
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in p)
        ):
            raise RulesError(f"{where}[{i}]: expected [x, y], got {p!r}")
        x, y = float(p[0]), float(p[1])
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise RulesError(f"{where}[{i}]: x and y are fractions of the frame, 0 to 1")
        points.append((x, y))
    return tuple(points)

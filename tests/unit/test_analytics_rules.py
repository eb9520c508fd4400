"""The rules file: the issue's shape parses as written; every error names the bad key."""

from __future__ import annotations

import json
import textwrap

import pytest

from pipeline.protocol import rules as rules_module
from pipeline.protocol.routes import RulesEdit, route
from pipeline.protocol.rules import RulesError, dump_rules, parse_rules, rules_document


def _documented_example() -> str:
    """The YAML block of ``pipeline/protocol/rules.py``'s docstring: what its readers copy."""
    block = (rules_module.__doc__ or "").split("::\n\n", 1)[1].split("\n\n", 1)[0]
    return textwrap.dedent(block) + "\n"


ISSUE_EXAMPLE = _documented_example()  # the shape the issue gave, as the docstring shows it


def test_the_issue_example_parses_as_written() -> None:
    rules = parse_rules(ISSUE_EXAMPLE)
    stream = rules.for_stream("door-3")
    assert stream is not None and stream.anchor == "bottom_center"
    (line,) = stream.lines
    assert (line.name, line.a, line.b, line.classes) == (
        "door", (0.5, 0.0), (0.5, 1.0), frozenset({"person"})
    )  # fmt: skip
    (zone,) = stream.zones
    assert zone.name == "lobby" and zone.loiter_s == 10.0
    assert zone.polygon == ((0.1, 0.1), (0.4, 0.1), (0.4, 0.9), (0.1, 0.9))
    assert zone.classes == frozenset({"person", "car"})
    assert rules.for_stream("lobby-cam") is None


def test_the_json_form_keeps_order_and_exactly_the_keys_written() -> None:
    text = ISSUE_EXAMPLE + '  "123":\n    track_lost_s: 1\n  "door-1":\n'
    document = rules_document(text)
    json.dumps(document)  # JSON-ready as it is
    patterns = [s["pattern"] for s in document["streams"]]
    assert patterns == ["door-*", "123", "door-1"]  # document order, numbers as strings
    door = document["streams"][0]
    assert set(door) == {"pattern", "anchor", "lines", "zones"}  # no defaults filled in
    assert door["lines"] == [{"name": "door", "points": [[0.5, 0.0], [0.5, 1.0]],
                              "classes": ["person"]}]  # fmt: skip
    assert document["streams"][1:] == [{"pattern": "123", "track_lost_s": 1},
                                       {"pattern": "door-1"}]  # fmt: skip
    assert rules_document("") == {"streams": []}
    with pytest.raises(RulesError, match="pointz: unknown key"):
        rules_document(ISSUE_EXAMPLE.replace("points:", "pointz:"))
    assert route("/v1/rules?format=json") == RulesEdit(json=True)
    assert route("/v1/rules") == RulesEdit(json=False)


def test_first_matching_glob_wins() -> None:
    rules = parse_rules(
        'streams:\n  "cam-1":\n    anchor: center\n  "cam-*":\n    anchor: top_center\n'
    )
    first, other = rules.for_stream("cam-1"), rules.for_stream("cam-2")
    assert first is not None and first.anchor == "center"
    assert other is not None and other.anchor == "top_center"


def test_empty_rules_and_omitted_classes() -> None:
    assert parse_rules("").streams == ()
    rules = parse_rules('streams:\n  "*":\n    lines:\n      - {name: l, points: [[0,0],[1,1]]}\n')
    stream = rules.for_stream("anything")
    assert stream is not None and stream.lines[0].classes is None


def test_dump_reads_back_the_same_rules() -> None:
    rules = parse_rules(ISSUE_EXAMPLE)
    assert parse_rules(dump_rules(rules)) == rules
    edged = parse_rules(ISSUE_EXAMPLE.replace("loiter_s: 10", "loiter_s: 10\n        margin: 0"))
    assert edged.streams[0].zones[0].margin == 0.0 and rules.streams[0].zones[0].margin > 0
    assert parse_rules(dump_rules(edged)) == edged


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('streams:\n  "a":\n    anchr: center\n', 'streams."a".anchr: unknown key'),
        ('streams:\n  "a":\n    anchor: middle\n', 'streams."a".anchor'),
        (
            'streams:\n  "a":\n    lines:\n      - {name: l, points: [[0.5, 0.0]]}\n',
            'streams."a".lines[0].points: a line has exactly 2 points',
        ),
        (
            'streams:\n  "a":\n    lines:\n      - {points: [[0, 0], [1, 1]]}\n',
            'streams."a".lines[0].name: missing',
        ),
        (
            'streams:\n  "a":\n    lines:\n      - {name: l, points: [[0, 0], [1.5, 1]]}\n',
            'streams."a".lines[0].points[1]: x and y are fractions',
        ),
        (
            'streams:\n  "a":\n    zones:\n      - {name: z, polygon: [[0, 0], [1, 1]]}\n',
            'streams."a".zones[0].polygon: a zone needs at least 3 points',
        ),
        (
            'streams:\n  "a":\n    zones:\n'
            "      - {name: z, polygon: [[0, 0], [1, 0], [1, 1]], loiter_s: soon}\n",
            'streams."a".zones[0].loiter_s: expected a number',
        ),
        (
            'streams:\n  "a":\n    zones:\n'
            "      - {name: z, polygon: [[0, 0], [1, 0], [1, 1]], classes: person}\n",
            'streams."a".zones[0].classes: expected a list',
        ),
        (
            'streams:\n  "a":\n    lines:\n      - {name: x, points: [[0, 0], [1, 1]]}\n'
            "    zones:\n      - {name: x, polygon: [[0, 0], [1, 0], [1, 1]]}\n",
            "the name 'x' is used twice",
        ),
        (
            'streams:\n  "a":\n    lines:\n'
            "      - {name: l, points: [[0, 0], [1, 1]], margin: -1}\n",
            'streams."a".lines[0].margin: must be at least 0',
        ),
        (
            'streams:\n  "a":\n    zones:\n'
            "      - {name: z, polygon: [[0, 0], [1, 0], [1, 1]], margin: 0.5}\n",
            'streams."a".zones[0].margin: 0.5 is a fraction of the frame',
        ),
        ("stream: {}\n", "rules.stream: unknown key"),
        ("streams: [1, 2]\n", "streams: expected a mapping"),
        ("streams: {a: [\n", "not valid YAML"),
    ],
)
def test_errors_name_the_bad_key(text: str, names: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(text)
    assert names in str(caught.value)

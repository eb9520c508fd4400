"""deploy/grafana/dashboards/vae.json: a well-formed Grafana dashboard on the provisioned
Prometheus data source, whose every query names a series the gateway and the worker really
export, and which plots every series they define.

The exported series come from the services' own metric classes (pipeline/metrics.py) through
prometheus_client's exposition and parser, so `_total`, `_bucket`, `_sum` and `_count` are
spelt as Prometheus stores them. No Grafana or Prometheus runs here.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from pipeline.metrics import GatewayMetrics, WorkerMetrics
from tests.conftest import Service, authed
from tests.deploy.support import DEPLOY, load_yaml

DASHBOARD_FILE = DEPLOY / "grafana" / "dashboards" / "vae.json"
DATASOURCES_FILE = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

# Metric families defined in pipeline/metrics.py that no panel plots, each with the reason.
# Empty: every series an operator can read is on the dashboard. A new metric either gets a
# panel or an entry here.
NOT_PLOTTED: dict[str, str] = {}

# PromQL functions and aggregation operators the dashboard may call. A name outside this set
# followed by "(" is a typo (or a new function to add here).
PROMQL_FUNCTIONS = frozenset(
    {
        # aggregations
        "sum", "avg", "min", "max", "count", "count_values", "group", "stddev", "stdvar",
        "topk", "bottomk", "quantile",
        # functions
        "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp",
        "clamp_max", "clamp_min", "count_over_time", "delta", "deriv", "floor",
        "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
        "histogram_sum", "idelta", "increase", "irate", "label_join", "label_replace",
        "last_over_time", "max_over_time", "min_over_time", "predict_linear",
        "quantile_over_time", "rate", "resets", "round", "scalar", "sort", "sort_desc",
        "sqrt", "sum_over_time", "time", "timestamp", "vector",
    }
)  # fmt: skip
# Keywords and literals that read like identifiers but name no series.
PROMQL_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "inf", "nan", "atan2"}
)
# Clauses whose parenthesised list holds label names, not series.
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`")
IDENTIFIER = re.compile(r"(?<![\w.:$])[A-Za-z_:][\w:]*")
GRAFANA_VARIABLES = frozenset({"__rate_interval", "__interval", "__range", "__range_s"})
RATE_FUNCTIONS = ("rate", "irate", "increase")


@dataclass(frozen=True)
class Reference:
    """What one PromQL expression names: series and called functions."""

    series: frozenset[str]
    functions: frozenset[str]


def parse_promql(expr: str) -> Reference:
    """The series and functions one PromQL expression names.

    Strings, label matchers ({...}), range and subquery selectors ([...]), grouping clauses
    (by (...), on (...)) and Grafana variables hold no series; what is left is identifiers,
    each either a function (followed by "(") or a keyword or a series name.
    """
    text = STRING.sub('""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = GROUPING.sub(" ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    series: set[str] = set()
    functions: set[str] = set()
    for match in IDENTIFIER.finditer(text):
        name = match.group()
        if text[match.end() :].lstrip().startswith("("):
            functions.add(name)
        elif name.lower() not in PROMQL_KEYWORDS:
            series.add(name)
    return Reference(frozenset(series), frozenset(functions))


def label_values_series(query: str) -> frozenset[str]:
    """The series a template variable's `label_values(series, label)` query reads."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
    if match is None:
        return frozenset()
    return parse_promql(match.group(1)).series


@dataclass(frozen=True)
class Exported:
    """The series one service exports: sample name -> (family name, family type)."""

    samples: dict[str, tuple[str, str]]

    @property
    def families(self) -> frozenset[str]:
        return frozenset(family for family, _ in self.samples.values())


def exported(registry: CollectorRegistry) -> Exported:
    text = generate_latest(registry).decode()
    return Exported(
        {
            sample.name: (family.name, family.type)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
    )


def touch_label_children(metrics: GatewayMetrics | WorkerMetrics) -> CollectorRegistry:
    """Create one child of every labelled metric, so its series appear in the exposition
    (a labelled metric with no child exports no sample)."""
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            metric.labels(*["x"] * len(metric._labelnames))
    return metrics.registry


@pytest.fixture(scope="module")
def services() -> dict[str, Exported]:
    return {
        "gateway": exported(touch_label_children(GatewayMetrics())),
        "worker": exported(touch_label_children(WorkerMetrics())),
    }


@pytest.fixture(scope="module")
def all_series(services: dict[str, Exported]) -> dict[str, tuple[str, str]]:
    merged: dict[str, tuple[str, str]] = {}
    for service in services.values():
        assert not merged.keys() & service.samples.keys(), "gateway and worker share a name"
        merged.update(service.samples)
    return merged


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels inside collapsed rows."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def plotting_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in all_panels(dashboard["panels"]) if p["type"] != "row"]


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query target."""
    return [
        (panel["title"], target["expr"])
        for panel in plotting_panels(dashboard)
        for target in panel["targets"]
    ]


def datasource_uid() -> str:
    uid = load_yaml(DATASOURCES_FILE)["datasources"][0]["uid"]
    assert isinstance(uid, str)
    return uid


# ------------------------------------------------------------------------ the parser itself


def test_parser_finds_series_and_skips_labels_functions_and_selectors() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, stage) (rate(vae_a_bucket{instance=~"$w",'
        ' stage!="infer"}[$__rate_interval]))) / on (instance) group_left (backend)'
        " vae_b_info offset 5m > bool 1e3 and vae_c{le='0.5'}[5m:1m] or max_over_time(vae_d[1h])"
    )
    found = parse_promql(expr)
    assert found.series == {"vae_a_bucket", "vae_b_info", "vae_c", "vae_d"}
    assert found.functions == {"histogram_quantile", "sum", "rate", "max_over_time"}
    assert parse_promql("sum without (instance) (x:recorded:rate5m)").series == {
        "x:recorded:rate5m"
    }
    assert label_values_series('label_values(vae_x_total{job="a"}, instance)') == {"vae_x_total"}


# ------------------------------------------------------------------------ structure


def test_dashboard_identity_and_refresh(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "vae"
    assert dashboard["title"] == "Video analytics engine"
    assert dashboard["refresh"] == "5s"
    assert dashboard["schemaVersion"] >= 39
    assert "id" not in dashboard or dashboard["id"] is None, "provisioned: Grafana assigns ids"


def test_rows_group_gateway_worker_and_end_to_end(dashboard: dict[str, Any]) -> None:
    rows = [p["title"] for p in all_panels(dashboard["panels"]) if p["type"] == "row"]
    assert rows == ["Gateway", "Worker", "End to end"]
    assert dashboard["panels"][0]["type"] == "row", "every panel sits under a row"


def test_every_panel_queries_the_provisioned_prometheus(dashboard: dict[str, Any]) -> None:
    uid = datasource_uid()
    panels = plotting_panels(dashboard)
    assert len(panels) >= 15
    for panel in panels:
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        assert panel.get("title"), f"{where}: no title"
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, where
        assert panel.get("targets"), f"{where}: no query"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), f"{where}: duplicate refId"
        for target in panel["targets"]:
            assert target.get("datasource", {}).get("uid", uid) == uid, where
            assert target.get("expr", "").strip(), f"{where}: target {target['refId']} is empty"


def test_panel_ids_are_unique(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in all_panels(dashboard["panels"])]
    assert all(isinstance(i, int) for i in ids)
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicates, f"duplicate panel ids: {duplicates}"


def test_panels_have_a_grid_position_inside_24_columns_without_overlap(
    dashboard: dict[str, Any],
) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in all_panels(dashboard["panels"]):
        grid = panel.get("gridPos")
        title = panel["title"]
        assert grid is not None, f"{title!r}: no gridPos"
        assert all(isinstance(grid.get(k), int) for k in "hwxy"), f"{title!r}: {grid}"
        assert grid["h"] > 0 and grid["w"] > 0 and 0 <= grid["x"] <= 24 - grid["w"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{title!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = title


def test_template_variables_read_exported_series_on_the_same_datasource(
    dashboard: dict[str, Any], all_series: dict[str, tuple[str, str]]
) -> None:
    uid = datasource_uid()
    variables = dashboard["templating"]["list"]
    assert variables, "a gateway/worker instance filter"
    for variable in variables:
        assert variable["datasource"]["uid"] == uid, variable["name"]
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        series = label_values_series(text)
        assert series, f"${variable['name']}: {text!r} is not label_values(series, label)"
        assert series <= all_series.keys(), f"${variable['name']}: {series - all_series.keys()}"


def test_every_variable_an_expression_uses_is_defined(dashboard: dict[str, Any]) -> None:
    defined = {v["name"] for v in dashboard["templating"]["list"]} | GRAFANA_VARIABLES
    for title, expr in expressions(dashboard):
        used = set(re.findall(r"\$\{?(\w+)", expr))
        assert used <= defined, f"{title!r}: undefined {used - defined} in {expr}"


# ------------------------------------------------------------------------ series


def test_every_query_names_only_series_the_services_export(
    dashboard: dict[str, Any], all_series: dict[str, tuple[str, str]]
) -> None:
    unknown: list[str] = []
    for title, expr in expressions(dashboard):
        found = parse_promql(expr)
        assert found.series, f"{title!r}: no series found in {expr}"
        unknown += [f"{title!r}: {name}" for name in sorted(found.series - all_series.keys())]
        strange = found.functions - PROMQL_FUNCTIONS
        assert not strange, f"{title!r}: unknown PromQL functions {strange} in {expr}"
    assert not unknown, "series no service exports:\n" + "\n".join(unknown)


def test_counters_and_histogram_series_are_read_as_rates(
    dashboard: dict[str, Any], all_series: dict[str, tuple[str, str]]
) -> None:
    """A counter's raw value, or a histogram's cumulative buckets, plotted as is only climb."""
    for title, expr in expressions(dashboard):
        for name in parse_promql(expr).series & all_series.keys():
            _, kind = all_series[name]
            if kind not in ("counter", "histogram"):
                continue
            as_rate = rf"\b(?:{'|'.join(RATE_FUNCTIONS)})\(\s*{re.escape(name)}\b"
            assert re.search(as_rate, expr), f"{title!r}: {name} is not under rate(): {expr}"


def test_quantiles_aggregate_buckets_by_le(dashboard: dict[str, Any]) -> None:
    for title, expr in expressions(dashboard):
        if "histogram_quantile" not in expr:
            continue
        assert all(name.endswith("_bucket") for name in parse_promql(expr).series), expr
        for clause in re.findall(r"\bby\s*\(([^()]*)\)", expr):
            labels = {label.strip() for label in clause.split(",")}
            assert "le" in labels, f"{title!r}: quantile over buckets summed without le: {expr}"


def test_every_metric_the_services_define_is_plotted(
    dashboard: dict[str, Any], services: dict[str, Exported]
) -> None:
    plotted = {name for _, expr in expressions(dashboard) for name in parse_promql(expr).series}
    defined: dict[str, set[str]] = {}
    for service in services.values():
        for sample, (family, _) in service.samples.items():
            defined.setdefault(family, set()).add(sample)
    unwatched = sorted(f for f, samples in defined.items() if not samples & plotted)
    missing = [f for f in unwatched if f not in NOT_PLOTTED]
    assert not missing, f"metrics no panel plots (add a panel, or to NOT_PLOTTED): {missing}"
    stale = sorted(NOT_PLOTTED.keys() - set(unwatched))
    assert not stale, f"NOT_PLOTTED names metrics that are plotted or no longer defined: {stale}"


def test_every_series_is_filtered_by_its_services_instance_variable(
    dashboard: dict[str, Any], services: dict[str, Exported]
) -> None:
    """Gateway series filter on $gateway, worker series on $worker: the two variables list
    each service's instances, whatever the scrape job is called (Compose or Kubernetes)."""
    for title, expr in expressions(dashboard):
        for name in parse_promql(expr).series:
            owner = next((s for s, exp in services.items() if name in exp.samples), None)
            if owner is None:
                continue  # an unknown series: the test above names it
            selector = rf"{re.escape(name)}\{{[^}}]*instance=~\"\${owner}\""
            assert re.search(selector, expr), f"{title!r}: {name} without ${owner} filter: {expr}"


# ------------------------------------------------------------------------ a real gateway


@pytest.mark.integration
def test_a_running_gateway_exports_the_families_of_its_metrics_class(
    start_gateway: Callable[..., Service], services: dict[str, Exported]
) -> None:
    """The registry check above speaks for the real service: a running gateway's /metrics
    has exactly the families of GatewayMetrics (nothing registered elsewhere, nothing less)."""
    gateway = start_gateway()
    with urllib.request.urlopen(authed(gateway.http + "/metrics"), timeout=10) as response:
        text = response.read().decode()
    families = {family.name for family in text_string_to_metric_families(text)}
    assert families == services["gateway"].families

"""Rendering the kustomize overlays and looking things up in what they render."""

from __future__ import annotations

import functools
from typing import Any

from tests.deploy.support import K8S, load_yaml_documents, require_tool, run

OVERLAYS = ("base", "dev", "eks")
# Custom resources: kubernetes-validate knows only the core API's schemas.
CRD_KINDS = {
    "ScaledObject": "KEDA",
    "TriggerAuthentication": "KEDA",
    "ServiceMonitor": "the Prometheus Operator",
}


def overlay_dir(name: str) -> str:
    return str(K8S / "base") if name == "base" else str(K8S / "overlays" / name)


@functools.cache
def _render(name: str) -> tuple[dict[str, Any], ...]:
    kubectl = require_tool("kubectl")
    result = run([kubectl, "kustomize", overlay_dir(name)], cwd=K8S, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize {name} failed:\n{result.stderr}"
    return tuple(load_yaml_documents(result.stdout))


def render(name: str) -> list[dict[str, Any]]:
    """The overlay's objects as `kubectl kustomize` renders them (skips without kubectl)."""
    return list(_render(name))


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def config_data(objects: list[dict[str, Any]]) -> dict[str, str]:
    """The services' settings ConfigMap (vae-config, hash-suffixed by kustomize)."""
    maps = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("vae-config")
    ]
    assert len(maps) == 1
    return dict(maps[0]["data"])


def container_env(objects: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """What a container's process sees: envFrom ConfigMaps, then its own env entries."""
    env: dict[str, str] = {}
    by_name = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(by_name[source["configMapRef"]["name"]].get("data", {}))
    for item in container.get("env", []):
        env[item["name"]] = item["value"]
    return env


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]

"""Every object of every kustomize overlay renders and validates against the Kubernetes
API schemas of the EKS version Terraform creates (kubernetes-validate, strict: unknown
fields are errors). Custom resources are skipped here, with the reason, and checked field
by field in test_kubernetes.py.
"""

from __future__ import annotations

import re

import kubernetes_validate
import pytest

from tests.deploy.kubernetes import CRD_KINDS, OVERLAYS, render
from tests.deploy.support import TERRAFORM


def eks_version() -> str:
    text = (TERRAFORM / "variables.tf").read_text()
    match = re.search(r'variable "kubernetes_version" \{.*?default\s*=\s*"([\d.]+)"', text, re.S)
    assert match, "terraform/variables.tf: kubernetes_version has no default"
    return match.group(1)


KUBERNETES_VERSION = eks_version()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_core_object_validates_against_the_kubernetes_schemas(overlay: str) -> None:
    objects = [o for o in render(overlay) if o["kind"] not in CRD_KINDS]
    assert objects, f"{overlay} rendered nothing"
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_are_not_schema_validated_here(overlay: str) -> None:
    custom = sorted({o["kind"] for o in render(overlay) if o["kind"] in CRD_KINDS})
    assert custom, f"{overlay} renders no custom resources"
    owners = ", ".join(f"{kind} ({CRD_KINDS[kind]})" for kind in custom)
    pytest.skip(
        f"{overlay}: {owners}: their CRD schemas are not available offline, so these kinds "
        "are not schema-validated; test_kubernetes.py checks their fields instead"
    )


def test_validation_catches_a_broken_object() -> None:
    """The validator really rejects what the API server would (guards the test above)."""
    broken = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {},
            "template": {"spec": {"containers": [{"name": "x", "imagePullPolicy": 3}]}},
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)

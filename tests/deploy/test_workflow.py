""".github/workflows/ci.yaml: valid GitHub Actions syntax (the schema SchemaStore publishes,
vendored by check-jsonschema), pinned actions, only the secrets the project documents, and
image builds that match the Dockerfiles. It is not run here (no GitHub, no AWS).
"""

from __future__ import annotations

import importlib.resources
import json
import re
from typing import Any

import jsonschema
import pytest

from tests.deploy.support import REPO, WORKFLOW, load_yaml

SECRETS = {"AWS_REGION", "AWS_ACCOUNT_ID", "ECR_REPO_PREFIX", "KUBE_CONFIG"}


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data = load_yaml(WORKFLOW)
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_workflow_validates_against_the_github_workflow_schema(workflow: dict[str, Any]) -> None:
    schemas = importlib.resources.files("check_jsonschema.builtin_schemas") / "vendor"
    schema = json.loads((schemas / "github-workflows.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = list(validator.iter_errors(workflow))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_jobs_lint_test_build_and_optionally_deploy(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert list(jobs) == ["test", "images", "deploy"]
    assert jobs["images"]["needs"] == "test" and jobs["deploy"]["needs"] == "images"
    assert "workflow_dispatch" in jobs["deploy"]["if"] and "inputs.deploy" in jobs["deploy"]["if"]
    runs = " ".join(step.get("run", "") for step in jobs["test"]["steps"])
    makefile = (REPO / "Makefile").read_text()
    for target in re.findall(r"\bmake (\w[\w-]*)", runs):
        assert re.search(rf"^{target}:", makefile, re.M), f"CI runs `make {target}`: no such target"
    assert {"lint", "typecheck", "test"} <= set(re.findall(r"\bmake (\w+)", runs))


def test_every_action_is_pinned_to_a_release(workflow: dict[str, Any]) -> None:
    for step in steps(workflow):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+)*", step["uses"]), step["uses"]


def test_only_documented_secrets_are_used() -> None:
    used = set(re.findall(r"secrets\.(\w+)", WORKFLOW.read_text()))
    assert used == SECRETS, f"secrets used {sorted(used)}; documented {sorted(SECRETS)}"
    assert "aws-access-key-id" not in WORKFLOW.read_text(), "CI signs in with OIDC, not stored keys"


def test_image_matrix_builds_real_dockerfile_targets(workflow: dict[str, Any]) -> None:
    matrix = workflow["jobs"]["images"]["strategy"]["matrix"]["include"]
    assert {m["image"] for m in matrix} == {"gateway", "worker", "worker-gpu"}
    for entry in matrix:
        dockerfile = REPO / entry["dockerfile"]
        assert re.search(
            rf"^FROM .* AS {re.escape(entry['target'])}$", dockerfile.read_text(), re.M
        ), entry


def test_deploy_writes_the_overlay_files_it_applies(workflow: dict[str, Any]) -> None:
    script = " ".join(step.get("run", "") for step in workflow["jobs"]["deploy"]["steps"])
    for key in (
        "VAE_KAFKA_BOOTSTRAP",
        "VAE_KAFKA_AWS_REGION",
        "IMAGE_REGISTRY",
        "IMAGE_TAG",
        "GATEWAY_ROLE_ARN",
        "WORKER_ROLE_ARN",
        "TOPICS_ROLE_ARN",
        "ANALYTICS_ROLE_ARN",
    ):
        assert f"{key}=" in script, f"the deploy job does not write {key}"
    assert "kubectl kustomize deploy/k8s/overlays/eks" in script

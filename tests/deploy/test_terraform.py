"""terraform/: formatted, valid for the pinned AWS provider (offline, from the local plugin
mirror when there is one), documented, and consistent with the Kubernetes manifests.

Nothing is planned or applied: there is no AWS account here.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.deploy.support import K8S, TERRAFORM, require_tool, run

PROVIDER_VERSION = "5.100.0"
# Where a provider mirror may be (`terraform init -plugin-dir`): VAE_TF_PLUGIN_DIR first.
MIRRORS = (
    os.environ.get("VAE_TF_PLUGIN_DIR", ""),
    "/opt/tf-plugins",
    str(Path.home() / ".terraform.d" / "plugins"),
)
# Init's messages when the provider cannot be downloaded (no mirror, no network).
OFFLINE = (
    "Failed to query available provider packages",
    "could not connect to registry",
    "Failed to install provider",
)


def tf_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(TERRAFORM.glob("*.tf"))}


def blocks(kind: str) -> dict[str, str]:
    """Body of each `variable "x" {` / `output "x" {` block, to its closing brace at column 0."""
    found = {}
    for text in tf_files().values():
        for match in re.finditer(rf'^{kind} "([\w-]+)" \{{\n(.*?)^\}}', text, re.M | re.S):
            found[match.group(1)] = match.group(2)
    return found


def mirror() -> str | None:
    for candidate in MIRRORS:
        if (
            candidate
            and (
                Path(candidate) / "registry.terraform.io" / "hashicorp" / "aws" / PROVIDER_VERSION
            ).is_dir()
        ):
            return candidate
    return None


def test_terraform_fmt_check() -> None:
    terraform = require_tool("terraform")
    result = run(
        [terraform, "fmt", "-check", "-recursive", "-diff", "."], cwd=TERRAFORM, timeout=60
    )
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"


def test_terraform_validate(tmp_path: Path) -> None:
    terraform = require_tool("terraform")
    # Work on a copy: init writes .terraform/ and a lock file, never into the checkout.
    work = tmp_path / "terraform"
    shutil.copytree(
        TERRAFORM, work, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "*.md")
    )
    plugin_dir = mirror()
    init = [terraform, "init", "-backend=false", "-input=false", "-no-color"]
    if plugin_dir:
        init.append(f"-plugin-dir={plugin_dir}")
    env = {"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    result = run(init, cwd=work, env=env, timeout=300)
    if (
        result.returncode != 0
        and not plugin_dir
        and any(m in result.stdout + result.stderr for m in OFFLINE)
    ):
        pytest.skip(
            f"hashicorp/aws {PROVIDER_VERSION} is neither mirrored here (set VAE_TF_PLUGIN_DIR) "
            "nor downloadable: terraform validate did not run"
        )
    assert result.returncode == 0, f"terraform init failed:\n{result.stdout}{result.stderr}"
    result = run([terraform, "validate", "-no-color"], cwd=work, env=env, timeout=300)
    assert result.returncode == 0, f"terraform validate failed:\n{result.stdout}{result.stderr}"
    assert "The configuration is valid" in result.stdout


def test_aws_provider_is_pinned_exactly() -> None:
    versions = tf_files()["versions.tf"]
    assert re.search(
        rf'source\s*=\s*"hashicorp/aws"\s*\n\s*version\s*=\s*"=\s*{re.escape(PROVIDER_VERSION)}"',
        versions,
    )
    # Plain resources only: registry modules cannot be fetched offline.
    assert not any(re.search(r'^\s*module\s+"', text, re.M) for text in tf_files().values())


def test_every_variable_and_output_is_described() -> None:
    variables, outputs = blocks("variable"), blocks("output")
    assert len(variables) >= 10 and len(outputs) >= 10
    for kind, found in (("variable", variables), ("output", outputs)):
        missing = [
            name
            for name, body in found.items()
            if not re.search(r"^\s*description\s*=", body, re.M)
        ]
        assert not missing, f"{kind}s without a description: {missing}"


def test_msk_is_sized_for_frames_with_tls_and_iam_only() -> None:
    msk = tf_files()["msk.tf"]
    assert re.search(r"number_of_broker_nodes\s*=\s*3", msk)
    assert re.search(r'client_broker\s*=\s*"TLS"', msk) and re.search(r"in_cluster\s*=\s*true", msk)
    assert re.search(r"unauthenticated\s*=\s*false", msk) and re.search(r"iam\s*=\s*true", msk)
    for prop in (
        "message.max.bytes=",
        "replica.fetch.max.bytes=",
        "log.retention.hours=",
        "auto.create.topics.enable=false",
    ):
        assert prop in msk, prop
    # Brokers must take the largest record the engine produces.
    default = int(
        re.search(
            r'variable "msk_message_max_bytes".*?default\s*=\s*(\d+)',
            tf_files()["variables.tf"],
            re.S,
        ).group(1)
    )
    from pipeline.config import TopicSettings

    assert default >= TopicSettings().max_message_bytes


def variable_default(name: str) -> str:
    match = re.search(r'default\s*=\s*"([^"]*)"', blocks("variable")[name])
    assert match, f"variable {name} has no string default"
    return match.group(1)


def env_file(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    )


def test_iam_policies_name_the_topics_and_group_the_manifests_use() -> None:
    base = env_file(K8S / "base" / "config.env")
    assert variable_default("frames_topic") == base["VAE_TOPICS_FRAMES"]
    assert variable_default("detections_topic") == base["VAE_TOPICS_DETECTIONS"]
    assert variable_default("worker_group") == base["VAE_WORKER_GROUP_ID"]
    assert variable_default("k8s_namespace") == re.search(
        r"^namespace: (\S+)", (K8S / "overlays" / "eks" / "kustomization.yaml").read_text(), re.M
    ).group(1)


def test_outputs_write_exactly_the_files_the_eks_overlay_reads() -> None:
    outputs = blocks("output")
    overlay = K8S / "overlays" / "eks"
    for output, file in (("k8s_msk_env", "msk.env"), ("k8s_cluster_env", "cluster.env")):
        keys = set(re.findall(r'"([A-Z_]+)=', outputs[output]))
        assert keys == set(env_file(overlay / file)), f"{output} and {file} disagree"
    kustomization = (overlay / "kustomization.yaml").read_text()
    used = set(re.findall(r"fieldPath: data\.([A-Z_]+)", kustomization)) - {"VAE_KAFKA_AWS_REGION"}
    assert used == set(env_file(overlay / "cluster.env"))


def test_gpu_nodes_carry_the_label_and_taint_the_worker_expects() -> None:
    eks = tf_files()["eks.tf"]
    # One node group per entry of local.node_pools, labelled with the entry's key.
    group = eks[eks.index('resource "aws_eks_node_group" "pool"') :]
    assert re.search(r"for_each\s*=\s*local\.node_pools", group)
    assert re.search(r'"vae.dev/pool"\s*=\s*each\.key', group)
    assert re.search(r'dynamic "taint"\s*\{\s*for_each\s*=\s*each\.value\.taints', group)
    pools = eks[eks.index("node_pools = {") :]
    gpu = re.search(r"^(\s*)gpu = \{\n(.*?)^\1\}", pools, re.M | re.S).group(2)
    assert re.search(r'key\s*=\s*"nvidia.com/gpu"', gpu) and re.search(
        r'effect\s*=\s*"NO_SCHEDULE"', gpu
    )
    worker = (K8S / "base" / "worker-deployment.yaml").read_text()
    assert "vae.dev/pool: gpu" in worker and "key: nvidia.com/gpu" in worker

"""What the rendered manifests mean: real `vae` commands and settings, probes on the ports
the services listen on, graceful shutdown, GPU scheduling, lag-based scaling capped by the
partition count, MSK IAM wiring, NLB annotations, monitoring selectors.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.kubernetes import OVERLAYS, config_data, container_env, find, pod_spec, render
from tests.deploy.support import assert_vae_command, assert_vae_environment

WORKLOADS = (
    ("Deployment", "vae-gateway"),
    ("Deployment", "vae-worker"),
    ("Deployment", "vae-analytics"),
    ("Job", "vae-topics"),
)
ROLE = {
    "vae-gateway": "gateway",
    "vae-worker": "worker",
    "vae-analytics": "analytics",
    "vae-topics": "topics",
}


def containers(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, c)
        for kind, name in WORKLOADS
        for c in pod_spec(find(objects, kind, name))["containers"]
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_container_runs_its_vae_command_with_settings_that_load(overlay: str) -> None:
    objects = render(overlay)
    for name, container in containers(objects):
        assert assert_vae_command(container["args"], f"{overlay} {name}") == ROLE[name]
        assert_vae_environment(container_env(objects, container), f"{overlay} {name}")


@pytest.mark.parametrize("overlay", ("dev", "eks"))
def test_overlays_name_a_broker_and_only_the_job_creates_topics(overlay: str) -> None:
    objects = render(overlay)
    for name, container in containers(objects):
        settings = assert_vae_environment(container_env(objects, container), f"{overlay} {name}")
        assert settings.kafka.bootstrap, f"{overlay} {name}: no VAE_KAFKA_BOOTSTRAP"
        assert settings.topics.create is (name == "vae-topics")


def test_eks_reaches_msk_over_tls_with_iam_and_replicates_three_times() -> None:
    data = config_data(render("eks"))
    assert data["VAE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["VAE_KAFKA_SASL_MECHANISM"] == "AWS_MSK_IAM"
    assert data["VAE_KAFKA_AWS_REGION"]
    assert all(b.endswith(":9098") for b in data["VAE_KAFKA_BOOTSTRAP"].split(",")), (
        "MSK's IAM port"
    )
    assert data["VAE_TOPICS_REPLICATION_FACTOR"] == "3"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_hit_health_and_readiness_on_the_port_the_service_listens_on(overlay: str) -> None:
    objects = render(overlay)
    port_setting = {"vae-gateway": "VAE_GATEWAY_PORT", "vae-worker": "VAE_WORKER_METRICS_PORT"}
    for name, variable in port_setting.items():
        container = pod_spec(find(objects, "Deployment", name))["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        listens = int(container_env(objects, container)[variable])
        for probe, path in (
            ("readinessProbe", "/readyz"),
            ("livenessProbe", "/healthz"),
            ("startupProbe", "/healthz"),
        ):
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{name} {probe}"
            assert ports[get["port"]] == listens, (
                f"{name} {probe} probes a port the service does not listen on"
            )


def test_gateway_drains_before_it_is_killed() -> None:
    spec = pod_spec(find(render("eks"), "Deployment", "vae-gateway"))
    pre_stop = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    # After preStop the gateway closes sockets (5 s) and flushes its producer (10 s).
    assert spec["terminationGracePeriodSeconds"] >= pre_stop + 15
    service = find(render("eks"), "Service", "vae-gateway")
    attributes = service["metadata"]["annotations"][
        "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"
    ]
    delay = int(
        dict(kv.split("=") for kv in attributes.split(","))["deregistration_delay.timeout_seconds"]
    )
    assert delay > pre_stop, "the NLB must keep draining connections until the gateway closed them"


def test_eks_gateway_is_an_nlb_suited_to_websockets() -> None:
    service = find(render("eks"), "Service", "vae-gateway")
    annotations = service["metadata"]["annotations"]
    prefix = "service.beta.kubernetes.io/aws-load-balancer-"
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["loadBalancerClass"] == "service.k8s.aws/nlb"
    assert annotations[prefix + "nlb-target-type"] == "ip"
    assert annotations[prefix + "healthcheck-path"] == "/readyz"
    port = service["spec"]["ports"][0]["port"]
    idle = annotations[f"{prefix}listener-attributes.TCP-{port}"]
    assert int(idle.split("=")[1]) > 350, "above the NLB's default TCP idle timeout"
    assert (
        "deregistration_delay.connection_termination.enabled=true"
        in annotations[prefix + "target-group-attributes"]
    )


def test_dev_gateway_service_stays_inside_the_cluster() -> None:
    assert find(render("dev"), "Service", "vae-gateway")["spec"]["type"] == "ClusterIP"


def test_eks_worker_asks_for_one_gpu_on_gpu_nodes() -> None:
    objects = render("eks")
    spec = pod_spec(find(objects, "Deployment", "vae-worker"))
    resources = spec["containers"][0]["resources"]
    assert (
        resources["limits"]["nvidia.com/gpu"] == 1 and resources["requests"]["nvidia.com/gpu"] == 1
    )
    assert spec["nodeSelector"] == {"vae.dev/pool": "gpu"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    assert spec["containers"][0]["image"].split("/")[-1].startswith("worker-gpu:")
    assert config_data(objects)["VAE_MODEL_PRECISION"] == "fp16"
    for name in ("vae-gateway",):
        assert pod_spec(find(objects, "Deployment", name))["nodeSelector"] == {
            "vae.dev/pool": "general"
        }


def test_dev_worker_runs_on_cpu_anywhere() -> None:
    spec = pod_spec(find(render("dev"), "Deployment", "vae-worker"))
    assert "nodeSelector" not in spec and "tolerations" not in spec
    assert "nvidia.com/gpu" not in str(spec["containers"][0]["resources"])
    assert spec["containers"][0]["image"] == "vae/worker:local"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_scale_on_the_groups_lag_up_to_the_partition_count(overlay: str) -> None:
    objects = render(overlay)
    scaled = find(objects, "ScaledObject", "vae-worker")
    worker = find(objects, "Deployment", "vae-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    env = container_env(objects, pod_spec(worker)["containers"][0])
    settings = assert_vae_environment(env, overlay)
    # A partition has one reader in the group: more workers than partitions would idle.
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    assert scaled["spec"]["maxReplicaCount"] <= settings.topics.frames_partitions
    (trigger,) = scaled["spec"]["triggers"]
    metadata = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert metadata["allowIdleConsumers"] == "false"
    assert int(metadata["lagThreshold"]) > 0
    assert metadata["offsetResetPolicy"] == "earliest"  # as the workers' auto.offset.reset
    # The scaler watches exactly what the workers consume: it reads their own environment.
    for parameter, variable in (
        ("bootstrapServersFromEnv", "VAE_KAFKA_BOOTSTRAP"),
        ("consumerGroupFromEnv", "VAE_WORKER_GROUP_ID"),
        ("topicFromEnv", "VAE_TOPICS_FRAMES"),
    ):
        assert metadata[parameter] == variable
        if overlay != "base":
            assert env.get(variable), f"{overlay}: the worker has no {variable} for KEDA to read"


def test_eks_scaler_reads_msk_with_iam() -> None:
    objects = render("eks")
    (trigger,) = find(objects, "ScaledObject", "vae-worker")["spec"]["triggers"]
    metadata = trigger["metadata"]
    assert metadata["tls"] == "enable"
    assert metadata["sasl"] == "oauthbearer" and metadata["saslTokenProvider"] == "aws_msk_iam"
    assert metadata["awsRegion"] == config_data(objects)["VAE_KAFKA_AWS_REGION"]
    auth = find(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert auth["spec"]["podIdentity"]["provider"] == "aws"


def test_eks_service_accounts_assume_their_own_iam_roles_and_images_come_from_ecr() -> None:
    objects = render("eks")
    roles = {
        sa["metadata"]["name"]: sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        for sa in objects
        if sa["kind"] == "ServiceAccount"
    }
    assert set(roles) == {"vae-gateway", "vae-worker", "vae-analytics", "vae-topics"}
    assert all(arn.startswith("arn:aws:iam::") for arn in roles.values())
    assert len(set(roles.values())) == 4, "one role per service account"
    for kind, name in WORKLOADS:
        spec = pod_spec(find(objects, kind, name))
        assert roles[spec["serviceAccountName"]]
        image = spec["containers"][0]["image"]
        assert ".dkr.ecr." in image and not image.endswith(":latest"), image
    assert not [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "vae-cluster"
    ], "the local-config values must not be applied"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_locked_down(overlay: str) -> None:
    for kind, name in WORKLOADS:
        spec = pod_spec(find(render(overlay), kind, name))
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001  # the images' vae user
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscalers_and_budgets_point_at_real_deployments(overlay: str) -> None:
    objects = render(overlay)
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    hpa = find(objects, "HorizontalPodAutoscaler", "vae-gateway")
    assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
    for name, deployment in deployments.items():
        if name.startswith("vae-"):
            # The HPA (KEDA's, for workers) owns the count; a fixed one would fight it.
            assert "replicas" not in deployment["spec"], f"{name} fixes its replica count"
    for pdb in (o for o in objects if o["kind"] == "PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        matched = [
            d
            for d in deployments.values()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matched) == 1, (
            f"PDB {pdb['metadata']['name']} selects {len(matched)} deployments"
        )


@pytest.mark.parametrize("overlay", ("base", "eks"))
def test_service_monitors_select_a_service_port_that_serves_metrics(overlay: str) -> None:
    objects = render(overlay)
    services = [o for o in objects if o["kind"] == "Service"]
    monitors = [o for o in objects if o["kind"] == "ServiceMonitor"]
    assert {m["metadata"]["name"] for m in monitors} == {"vae-gateway", "vae-worker"}
    for monitor in monitors:
        selector = monitor["spec"]["selector"]["matchLabels"]
        (service,) = [
            s for s in services if selector.items() <= s["metadata"].get("labels", {}).items()
        ]
        port_names = {p["name"] for p in service["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in port_names and endpoint["path"] == "/metrics"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_select_pods_that_expose_their_target_port(overlay: str) -> None:
    objects = render(overlay)
    pods = [(find(objects, "Deployment", n), n) for n in ("vae-gateway", "vae-worker")]
    for service in (
        o for o in objects if o["kind"] == "Service" and o["metadata"]["name"].startswith("vae-")
    ):
        selector = service["spec"]["selector"]
        (deployment,) = [
            d
            for d, _ in pods
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        names = {p["name"] for p in pod_spec(deployment)["containers"][0]["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names

"""deploy/compose: the file is valid Compose, every service runs a real `vae` command with
real settings, and the monitoring files it mounts agree with it.

No Docker engine runs here: the stack itself is not started (README says so).
"""

from __future__ import annotations

import importlib.resources
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.deploy.support import (
    COMPOSE_FILE,
    DEPLOY,
    REPO,
    assert_vae_command,
    assert_vae_environment,
    load_yaml,
)
from tests.redpanda import REDPANDA_IMAGE

COMPOSE_DIR = COMPOSE_FILE.parent
VAE_IMAGES = ("vae/gateway:local", "vae/worker:local", "vae/worker-gpu:local")


def interpolate(value: Any) -> Any:
    """Compose's ${VAR:-default} / ${VAR} substitution, with the defaults (an empty environment)."""
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", value)
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return interpolate(load_yaml(COMPOSE_FILE))


def vae_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if s.get("image") in VAE_IMAGES}


def test_file_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schemas = importlib.resources.files("check_jsonschema.builtin_schemas") / "vendor"
    schema = json.loads((schemas / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_stack_has_every_part(compose: dict[str, Any]) -> None:
    expected = {
        "redpanda",
        "console",
        "topic-init",
        "gateway",
        "worker",
        "worker-gpu",
        "analytics",
        "replay",
        "prometheus",
        "grafana",
    }
    assert expected <= set(compose["services"])


def test_every_service_command_is_a_real_vae_sub_command(compose: dict[str, Any]) -> None:
    commands = {
        name: assert_vae_command(s["command"], f"service {name}")
        for name, s in vae_services(compose).items()
    }
    assert commands == {
        "topic-init": "topics",
        "gateway": "gateway",
        "worker": "worker",
        "worker-gpu": "worker",
        "analytics": "analytics",
        "replay": "replay",
        "sink-postgres": "sink",
        "sink-mqtt": "sink",
    }


def test_sinks_are_a_profile_writing_to_the_stacks_own_postgres_and_mosquitto(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in ("postgres", "mosquitto", "sink-postgres", "sink-mqtt"):
        assert services[name]["profiles"] == ["sinks"], name
    assert services["sink-postgres"]["command"][:2] == ["sink", "postgres"]
    assert services["sink-mqtt"]["command"][:2] == ["sink", "mqtt"]
    dsn = services["sink-postgres"]["environment"]["VAE_SINK_POSTGRES_DSN"]
    assert "@postgres:5432/" in dsn
    assert services["sink-mqtt"]["environment"]["VAE_SINK_MQTT_HOST"] == "mosquitto"
    assert services["sink-postgres"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_service_setting_is_real_and_loads(compose: dict[str, Any]) -> None:
    for name, service in vae_services(compose).items():
        assert_vae_environment(service.get("environment", {}), f"service {name}")


def test_services_reach_the_broker_registry_and_gateway_by_their_compose_names(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in ("topic-init", "gateway", "worker", "worker-gpu"):
        env = services[name]["environment"]
        assert env["VAE_KAFKA_BOOTSTRAP"] == "redpanda:9092"
        assert env["VAE_SCHEMA_REGISTRY_URL"] == "http://redpanda:8081"
    assert (
        services["replay"]["environment"]["VAE_GATEWAY_URL"]
        == f"ws://gateway:{services['gateway']['environment']['VAE_GATEWAY_PORT']}"
    )
    # Only the one-shot job creates topics; everything else waits for it.
    assert services["topic-init"]["environment"]["VAE_TOPICS_CREATE"] == "true"
    for name in ("gateway", "worker", "worker-gpu"):
        assert services[name]["environment"]["VAE_TOPICS_CREATE"] == "false"
        assert (
            services[name]["depends_on"]["topic-init"]["condition"]
            == "service_completed_successfully"
        )


def test_depends_on_names_real_services(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for dependency in service.get("depends_on", {}):
            assert dependency in compose["services"], f"{name} depends on unknown {dependency}"


def test_builds_use_the_dockerfiles_and_their_targets(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        build = service.get("build")
        if not build:
            continue
        context = (COMPOSE_DIR / build["context"]).resolve()
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        assert re.search(
            rf"^FROM .* AS {re.escape(build['target'])}$", dockerfile.read_text(), re.M
        ), f"{name}: {dockerfile.name} has no stage {build['target']}"


def test_gpu_worker_is_a_profile_with_a_device_reservation(compose: dict[str, Any]) -> None:
    gpu = compose["services"]["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "profiles" not in compose["services"]["worker"], "the CPU worker runs by default"


def test_redpanda_runs_in_dev_mode_with_the_same_image_as_the_tests(
    compose: dict[str, Any],
) -> None:
    redpanda = compose["services"]["redpanda"]
    assert redpanda["image"] == REDPANDA_IMAGE
    assert "--mode=dev-container" in redpanda["command"]
    assert any(arg.startswith("--schema-registry-addr=") for arg in redpanda["command"])


def test_every_mounted_repository_file_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("."):
                continue  # a named volume
            if "media" in source:
                continue  # the sample media lives beside the checkout, not in it
            path = (COMPOSE_DIR / source).resolve()
            assert path.exists(), f"{name} mounts {source}: missing"


def test_prometheus_scrapes_the_gateway_and_every_worker(compose: dict[str, Any]) -> None:
    scrape = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")["scrape_configs"]
    jobs = {job["job_name"]: job for job in scrape}
    services = compose["services"]
    gateway_port = services["gateway"]["environment"]["VAE_GATEWAY_PORT"]
    assert jobs["vae-gateway"]["static_configs"][0]["targets"] == [f"gateway:{gateway_port}"]
    dns = jobs["vae-worker"]["dns_sd_configs"][0]
    assert set(dns["names"]) == {"worker", "worker-gpu"}
    for name in dns["names"]:
        assert str(dns["port"]) == services[name]["environment"]["VAE_WORKER_METRICS_PORT"]


def test_grafana_loads_dashboards_from_the_mounted_folder(compose: dict[str, Any]) -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    providers = load_yaml(provisioning / "dashboards" / "vae.yml")["providers"]
    datasources = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    mounts = dict(
        v.rsplit(":", 1)[0].split(":", 1)[::-1] for v in compose["services"]["grafana"]["volumes"]
    )
    assert Path(mounts[providers[0]["options"]["path"]]) == Path("../grafana/dashboards")
    assert mounts["/etc/grafana/provisioning"] == "../grafana/provisioning"
    assert (
        datasources[0]["url"] == "http://prometheus:9090" and datasources[0]["uid"] == "prometheus"
    )


def test_console_reads_the_broker_and_registry(compose: dict[str, Any]) -> None:
    console = load_yaml(COMPOSE_DIR / "console.yml")
    assert console["kafka"]["brokers"] == ["redpanda:9092"]
    assert console["schemaRegistry"]["urls"] == ["http://redpanda:8081"]
    assert (
        compose["services"]["console"]["environment"]["CONFIG_FILEPATH"]
        == "/etc/console/console.yml"
    )


def test_media_default_is_the_shared_folder_beside_the_checkout() -> None:
    raw = load_yaml(COMPOSE_FILE)["services"]["replay"]["volumes"][0]
    assert raw.startswith("${VAE_MEDIA_DIR:-../../../shared/media}:")
    # ../shared/media beside the checkout, where the tests and `vae up` find the sample clip.
    assert (
        Path(os.path.normpath(COMPOSE_DIR / "../../../shared/media"))
        == REPO.parent / "shared" / "media"
    )

"""The images: every file a Dockerfile copies exists and reaches the build context; stages,
users, health checks and commands are what the deployment expects.

No Docker engine runs here, so the images are not built: these checks read the files.
"""

from __future__ import annotations

import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from tests.deploy.dockerignore import DockerIgnore
from tests.deploy.support import DEPLOY, REPO, assert_vae_command

DOCKERFILES = sorted((DEPLOY / "docker").glob("Dockerfile*"))
IGNORE = DockerIgnore.of(REPO / ".dockerignore")
# The images the deployment runs: Compose, Kubernetes and CI build these targets.
TARGETS = {"Dockerfile": ("gateway", "worker"), "Dockerfile.gpu": ("worker-gpu",)}


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]]


def stages(path: Path) -> list[Stage]:
    """The Dockerfile's stages with their instructions, ARG defaults substituted in FROM."""
    parser = DockerfileParser(fileobj=io.BytesIO(path.read_bytes()))
    args: dict[str, str] = {}
    result: list[Stage] = []
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "ARG" and not result and "=" in value:
            key, default = value.split("=", 1)
            args[key.strip()] = default.strip()
        elif instruction == "FROM":
            words = value.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(result))
            result.append(Stage(name, base, []))
        elif result and instruction != "COMMENT":
            result[-1].instructions.append((instruction, value))
    return result


def copies(path: Path) -> list[tuple[str, list[str], str]]:
    """(stage, sources, flags) of every COPY/ADD."""
    found = []
    for stage in stages(path):
        for instruction, value in stage.instructions:
            if instruction in ("COPY", "ADD"):
                words = shlex.split(value)
                flags = " ".join(w for w in words if w.startswith("--"))
                paths = [w for w in words if not w.startswith("--")]
                found.append((stage.name, paths[:-1], flags))
    return found


def test_there_are_a_cpu_and_a_gpu_dockerfile() -> None:
    assert [p.name for p in DOCKERFILES] == ["Dockerfile", "Dockerfile.gpu"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copied_file_exists_and_is_in_the_build_context(dockerfile: Path) -> None:
    context_copies = [
        (s, src) for s, srcs, flags in copies(dockerfile) if "--from" not in flags for src in srcs
    ]
    assert context_copies
    for stage, source in context_copies:
        assert (REPO / source).exists(), f"{dockerfile.name} ({stage}) copies {source}: missing"
        assert IGNORE.included(source), (
            f"{dockerfile.name} copies {source}, but .dockerignore drops it"
        )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copies_between_stages_name_an_earlier_stage(dockerfile: Path) -> None:
    seen: list[str] = []
    for stage in stages(dockerfile):
        for instruction, value in stage.instructions:
            match = re.search(r"--from=(\S+)", value) if instruction == "COPY" else None
            if match:
                assert match.group(1) in seen, (
                    f"{stage.name}: COPY --from={match.group(1)} is no earlier stage"
                )
        seen.append(stage.name)


def test_dockerignore_keeps_weights_media_and_local_state_out() -> None:
    for path in (
        "models/yolox_nano.onnx",
        "pipeline/x.onnx",
        ".venv/bin/python",
        "tests/conftest.py",
        "terraform/terraform.tfstate",
        ".git/HEAD",
        "artifacts/up/gateway.log",
        "pipeline/__pycache__/cli.cpython-311.pyc",
        "media/vtest.avi",
    ):
        assert not IGNORE.included(path), f"{path} would be sent to the image builder"
    for path in (
        "pyproject.toml",
        "pipeline/cli.py",
        "schemas/frame.avsc",
        "pipeline/gateway/web/index.html",
    ):
        assert IGNORE.included(path), f"{path} is needed by the build"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned_to_an_exact_tag(dockerfile: Path) -> None:
    names = {s.name for s in stages(dockerfile)}
    for stage in stages(dockerfile):
        if stage.base in names:
            continue
        assert "$" not in stage.base, f"{stage.name}: base {stage.base} has no default"
        tag = stage.base.rpartition(":")[2]
        assert tag != stage.base and tag != "latest" and re.search(r"\d", tag), (
            f"{stage.name}: base image {stage.base} is not pinned to an exact tag"
        )


@pytest.mark.parametrize(
    ("dockerfile", "target"),
    [(DEPLOY / "docker" / name, target) for name, targets in TARGETS.items() for target in targets],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_service_targets_run_vae_as_non_root_with_a_health_check(
    dockerfile: Path, target: str
) -> None:
    by_name = {s.name: s for s in stages(dockerfile)}
    assert target in by_name, f"{dockerfile.name} has no stage {target}"
    # A target inherits from the stages it is built FROM.
    chain, stage = [], by_name[target]
    while True:
        chain.insert(0, stage)
        if stage.base not in by_name:
            break
        stage = by_name[stage.base]
    last: dict[str, str] = {}
    for s in chain:
        for instruction, value in s.instructions:
            last[instruction] = value
    user = last.get("USER", "root").split(":")[0]
    assert user not in ("", "0", "root"), f"{target} runs as root"
    assert "healthcheck.py" in last.get("HEALTHCHECK", ""), f"{target} has no HEALTHCHECK"
    role = "gateway" if target == "gateway" else "worker"
    assert shlex.split(last["HEALTHCHECK"])[-1].strip('"]') == role
    entrypoint = shlex.split(last["ENTRYPOINT"].strip("[]").replace(",", " "))
    command = shlex.split(last["CMD"].strip("[]").replace(",", " "))
    assert entrypoint == ["vae"], f"{target}: ENTRYPOINT is {entrypoint}"
    assert assert_vae_command(command, f"{target} CMD") == role


def test_weights_come_from_the_checked_download_not_the_context() -> None:
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        assert "vae models fetch" in text, f"{dockerfile.name} does not fetch the model"
        assert ".onnx" not in " ".join(src for _, srcs, _ in copies(dockerfile) for src in srcs)

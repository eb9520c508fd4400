"""The web viewer in a real browser, against the real pipeline fed with real media.

The oracle is a second subscriber (DetectionLog): for the frame a tile shows, the tile must
draw exactly the objects the gateway sent for that frame, where they are.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    TILE_JS,
    WAIT_MS,
    Pipeline,
    assert_boxes_match,
    screenshot,
    tile,
    wait_exact,
)
from tests.conftest import TEST_TOKEN, Stack, authed, start_service, viewer_url
from tests.reference import assert_matches_reference

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def stream_row(page: Page, stream: str) -> Any:
    return page.locator(f'#stream-list li[data-stream="{stream}"]')


def gateway_streams(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(authed(f"{url}/v1/streams"), timeout=5) as answer:
        body: dict[str, Any] = json.load(answer)
    return body


def test_dog_is_drawn_with_exactly_the_detections_of_its_frame(
    page: Page, pipeline: Pipeline, detection_log: Any, media: Path
) -> None:
    log = detection_log(pipeline.ws, ["dog-0"])
    pipeline.replay(
        "replay-dog", media / "dog.jpg", "--streams", "1", "--fps", "3", "--prefix", "dog"
    )
    page.goto(viewer_url(pipeline.url, "layout=1&streams=dog-0"))

    snapshot = wait_exact(page, "dog-0")
    objects = log.objects("dog-0", int(snapshot["frameId"]), int(snapshot["frameTsUs"]))
    assert_boxes_match(snapshot, objects)
    assert_matches_reference(objects)  # dog.jpg is sent as it is: the model's reference boxes
    assert "dog" in {b["label"] for b in snapshot["boxes"]}
    assert snapshot["ariaLabel"].startswith(f"{len(objects)} objects: ")

    expect(stream_row(page, "dog-0")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(page.get_by_role("checkbox", name=re.compile(r"^Watch dog-0"))).to_be_checked()
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    dog_tile = page.locator('.tile[data-stream="dog-0"]')
    expect(dog_tile.locator(".readouts")).to_have_text(
        re.compile(r"^\d+\.\d fps · e2e \d+(\.\d)? m?s"), timeout=15_000
    )
    expect(dog_tile.locator(".badge")).to_have_text("live")
    expect(page.locator("#recent li").first).to_contain_text("dog")
    screenshot(page, "dog")

    # The class filter: only dogs are drawn (the others are said to be hidden), and it
    # goes into the URL so the view can be bookmarked.
    page.get_by_role("button", name=re.compile(r"^dog\b")).click()
    expect(dog_tile).to_have_attribute("data-box-count", "1")
    filtered = tile(page, "dog-0")
    objects = log.objects("dog-0", int(filtered["frameId"]), int(filtered["frameTsUs"]))
    assert [b["label"] for b in filtered["boxes"]] == ["dog"]
    dogs = [o["box"] for o in objects if o["label"] == "dog"]
    assert [b["box"] for b in filtered["boxes"]] == dogs
    expect(dog_tile.locator(".match-note")).to_contain_text("hidden by the class filter")
    assert "classes=dog" in page.url
    screenshot(page, "dog-filtered")

    # On a phone: one column, nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    expect(dog_tile).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "dog-phone")


def test_sample_clip_in_a_grid_with_stream_list_and_class_filter(
    page: Page, pipeline: Pipeline, detection_log: Any, media: Path
) -> None:
    streams = [f"clip-{i}" for i in range(4)]
    log = detection_log(pipeline.ws, streams)
    pipeline.replay(
        "replay-clip", media / "vtest.avi",
        "--streams", "4", "--fps", "1.5", "--prefix", "clip", "--max-frames", "240",
    )  # fmt: skip
    page.goto(viewer_url(pipeline.url))  # no view in the URL: the grid takes streams as they appear

    for stream in streams:
        expect(stream_row(page, stream)).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(page.locator("#stream-count")).to_have_text("4 streams")
    expect(page.locator("#grid")).to_have_class(re.compile(r"\blayout-4\b"))
    labels: set[str] = set()
    for stream in streams:
        snapshot = wait_exact(page, stream)
        objects = log.objects(stream, int(snapshot["frameId"]), int(snapshot["frameTsUs"]))
        assert_boxes_match(snapshot, objects)
        labels |= {b["label"] for b in snapshot["boxes"]}
    assert "person" in labels  # pedestrians on the walkway
    view = parse_qs(urlsplit(page.url).fragment)  # the view is in the URL, to bookmark
    assert view["layout"] == ["4"] and sorted(view["streams"][0].split(",")) == streams
    page.wait_for_timeout(1500)  # let every tile draw a few more frames for the picture
    screenshot(page, "sample-clip")

    page.get_by_role("button", name=re.compile(r"^person\b")).click()
    for stream in streams:
        snapshot = tile(page, stream)
        if snapshot["match"] != "exact":
            continue
        objects = log.objects(stream, int(snapshot["frameId"]), int(snapshot["frameTsUs"]))
        persons = sorted(tuple(o["box"]) for o in objects if o["label"] == "person")
        assert sorted(tuple(b["box"]) for b in snapshot["boxes"]) == persons
        assert {b["label"] for b in snapshot["boxes"]} <= {"person"}
    page.get_by_role("button", name="All classes").click()
    screenshot(page, "sample-clip-person")

    # Layouts: 3×3 leaves five empty cells; 1 keeps only the first stream.
    order = view["streams"][0].split(",")  # the order the streams appeared in
    page.get_by_role("radio", name="3×3").check()
    expect(page.locator("#grid > .tile")).to_have_count(9)
    expect(page.locator("#grid > .tile.empty")).to_have_count(5)
    screenshot(page, "sample-clip-3x3")
    page.get_by_role("radio", name="1", exact=True).check()
    expect(page.locator("#grid > .tile")).to_have_count(1)
    expect(page.locator(f'#grid > .tile[data-stream="{order[0]}"]')).to_have_count(1)
    expect(page.get_by_role("checkbox", name=re.compile(f"^Watch {order[1]}"))).not_to_be_checked()
    # Ticking another stream grows the grid again; × takes a stream off.
    page.get_by_role("checkbox", name=re.compile(f"^Watch {order[2]}")).check()
    expect(page.locator("#grid")).to_have_class(re.compile(r"\blayout-4\b"))
    expect(page.locator(f'#grid > .tile[data-stream="{order[2]}"]')).to_have_count(1)
    page.get_by_role("button", name=f"Stop watching {order[0]}").click()
    expect(page.locator(f'#grid > .tile[data-stream="{order[0]}"]')).to_have_count(0)
    assert parse_qs(urlsplit(page.url).fragment)["streams"] == [order[2]]


def test_when_the_frame_is_gone_earlier_boxes_are_drawn_dashed_and_said_so(
    page: Page, stack: Stack, start_gateway: Any, start_worker: Any, detection_log: Any, media: Path
) -> None:
    # Without the gateway's recent frames the viewer can only fetch the latest frame, which
    # is newer than the frame the detections belong to whenever a frame period (40 ms at
    # 25 fps) is shorter than capture-to-detections. The worker's batch wait makes that so
    # on any machine: a batch of 8 is never filled at 25 fps, so each waits the full 200 ms.
    worker = start_worker(wait=False, VAE_WORKER_MAX_WAIT_MS="200")
    gateway = start_gateway(VAE_GATEWAY_FRAME_HISTORY="0")
    worker.wait_http("/readyz", timeout=90)
    url = gateway.http.replace("http://", "ws://")
    log = detection_log(url, ["fast-0"])
    start_service(
        stack, "replay-fast",
        ["replay", str(media / "dog.jpg"), "--gateway", url, "--streams", "1", "--fps", "25",
         "--prefix", "fast"],
    )  # fmt: skip
    page.goto(viewer_url(gateway.http, "layout=1&streams=fast-0"))
    handle = page.wait_for_function(
        f"""() => {{
            const snapshot = ({TILE_JS})("fast-0");
            return snapshot && snapshot.match === "earlier" ? snapshot : null;
        }}""",
        timeout=WAIT_MS,
    )
    snapshot = handle.json_value()
    assert int(snapshot["boxesTsUs"]) < int(snapshot["frameTsUs"])
    assert int(snapshot["boxesFrameId"]) < int(snapshot["frameId"])
    objects = log.objects("fast-0", int(snapshot["boxesFrameId"]), int(snapshot["boxesTsUs"]))
    drawn = sorted((b["label"], tuple(b["box"])) for b in snapshot["boxes"])
    assert drawn == sorted((o["label"], tuple(o["box"])) for o in objects)
    assert all(b["dashed"] for b in snapshot["boxes"])
    assert snapshot["ariaLabel"].endswith("(from an earlier frame)")
    screenshot(page, "earlier-boxes-dashed")


def test_viewer_reconnects_by_itself_when_the_gateway_restarts(
    page: Page, stack: Stack, pipeline: Pipeline, detection_log: Any, media: Path
) -> None:
    pipeline.replay(
        "replay-restart", media / "dog.jpg", "--streams", "1", "--fps", "3", "--prefix", "cam"
    )
    page.goto(viewer_url(pipeline.url, "streams=cam-0"))
    before = wait_exact(page, "cam-0")
    page.evaluate("window.sameDocument = true")  # a reload would lose it

    pipeline.gateway.stop()
    banner = page.locator("#connection")
    expect(banner).to_have_attribute("data-state", "reconnecting", timeout=20_000)
    expect(banner).to_contain_text(re.compile(r"Reconnecting in \d+ s"))
    expect(page.locator('.tile[data-stream="cam-0"] .badge')).to_contain_text("reconnecting")
    screenshot(page, "restart-gateway-down")

    port = urlsplit(pipeline.url).port
    env = stack.with_env(VAE_GATEWAY_PORT=str(port), VAE_GATEWAY_HOST="127.0.0.1")
    again = start_service(stack, f"gateway-again-{port}", ["gateway"], env, pipeline.url)
    again.wait_http("/readyz")
    log = detection_log(pipeline.ws, ["cam-0"])
    logging_since_us = time.time_ns() // 1000  # frames received from now on are in the log

    expect(banner).to_have_attribute("data-state", "connected", timeout=30_000)
    page.wait_for_function(
        """([stream, ts]) => {
            const t = document.querySelector(`.tile[data-stream="${stream}"]`);
            return t && t.dataset.match === "exact" && Number(t.dataset.frameTsUs) > ts;
        }""",
        arg=["cam-0", logging_since_us],
        timeout=WAIT_MS,
    )
    after = tile(page, "cam-0")
    assert int(after["frameId"]) > int(before["frameId"])  # the same camera, later frames
    assert_boxes_match(after, log.objects("cam-0", int(after["frameId"]), int(after["frameTsUs"])))
    assert page.evaluate("window.sameDocument") is True
    expect(page.locator('.tile[data-stream="cam-0"] .badge')).to_have_text("live")
    screenshot(page, "restart-gateway-back")


def test_use_my_camera_closes_the_loop_from_the_browser(
    page: Page, pipeline: Pipeline, detection_log: Any
) -> None:
    stream = "webcam-test"
    log = detection_log(pipeline.ws, [stream])
    page.goto(viewer_url(pipeline.url))
    page.get_by_text("Use my camera").click()
    page.get_by_label("Stream id").fill(stream)
    page.get_by_label("Frames per second").select_option("2")
    page.get_by_role("button", name="Start camera").click()
    expect(page.get_by_role("button", name="Stop camera")).to_be_visible()

    snapshot = wait_exact(page, stream)  # Chromium's fake camera films dog.jpg
    objects = log.objects(stream, int(snapshot["frameId"]), int(snapshot["frameTsUs"]))
    assert_boxes_match(snapshot, objects)
    assert "dog" in {b["label"] for b in snapshot["boxes"]}
    listed = {s["stream_id"]: s for s in gateway_streams(pipeline.url)["streams"]}
    assert (listed[stream]["width"], listed[stream]["height"]) == (768, 576)
    expect(page.locator("#camera-status")).to_contain_text("frames sent")
    screenshot(page, "camera")

    page.get_by_role("button", name="Stop camera").click()
    expect(page.locator("#camera-status")).to_contain_text("camera off")
    expect(stream_row(page, stream)).to_have_attribute("data-state", "stale", timeout=20_000)


def test_without_a_token_the_viewer_asks_for_one_and_then_shows_the_streams(
    page: Page, pipeline: Pipeline, media: Path
) -> None:
    pipeline.replay("replay", media / "dog.jpg", "--streams", "1", "--fps", "2", "--prefix", "dog")
    page.goto(f"{pipeline.url}/#layout=1&streams=dog-0")  # no token in the URL
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#token-reason")).to_contain_text("needs a token")
    page.fill("#token-input", TEST_TOKEN)
    page.click("#token-form button[type=submit]")
    expect(dialog).to_be_hidden()
    expect(stream_row(page, "dog-0")).to_be_visible(timeout=WAIT_MS)
    wait_exact(page, "dog-0")
    # The token lives in this tab's session storage, never in the address bar.
    assert page.evaluate("sessionStorage.getItem('vae.token')") == TEST_TOKEN
    assert "token" not in page.url

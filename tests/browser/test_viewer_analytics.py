"""The viewer's analytics in a real browser: real gateway, worker and `vae analytics`.

The analytics read a rules file (a line and a zone); the clip of tests/analytics_clip.py
(dog.jpg's car driven over the line and into and out of the zone a known number of times)
is sent at its own 10 fps while the viewer watches: the line and zone must be drawn where
the rules put them, boxes carry track ids, the counters reach the clip's exact counts, and
the events list holds its events in order. Then a line drawn with the mouse is saved
through the API and counts the next pass.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from client import IngestClient
from pipeline.auth.tokens import issue
from tests.analytics_clip import RULES_YAML, H, W, make_clip, rules_file, with_blank_end
from tests.browser.conftest import WAIT_MS, screenshot
from tests.conftest import TEST_SECRET, Stack, authed, viewer_url, ws_url

pytestmark = [pytest.mark.integration, pytest.mark.browser]

STREAM = "clip-1"
# Newest first, as the list shows them: the clip's events (test_analytics.EXPECTED_EVENTS)
# in reverse; the last exit is the track lost after the clip ends inside the zone.
EXPECTED_NEWEST_FIRST = [
    ("zone_exit", ""),
    ("zone_enter", ""),
    ("line_crossed", "in"),
    ("line_crossed", "out"),
    ("zone_exit", ""),
    ("zone_enter", ""),
    ("line_crossed", "in"),
]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(authed(url), timeout=10) as answer:
        return json.load(answer)


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(authed(url), timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


class ClipSender:
    """Sends the clip at its own pace (10 fps) from a thread, acknowledged frame by frame,
    then one empty frame 3 s later in the clip's time: the track is lost (after 1 s) and
    every window closes (2 s windows, 0.5 s grace)."""

    def __init__(self, url: str, dog_jpg: bytes, start_us: int) -> None:
        self.frames, self.ts = with_blank_end(make_clip(dog_jpg, start_us), 3_000_000)
        self.url = url
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="clip-sender", daemon=True)

    @property
    def last_us(self) -> int:
        return self.ts[-1]

    def _run(self) -> None:
        try:
            asyncio.run(self._send())
        except BaseException as exc:  # reported by join()
            self.failure = exc

    async def _send(self) -> None:
        async with IngestClient(self.url, STREAM, ack=True) as cam:
            began = time.monotonic()
            for frame_id, (jpeg, capture) in enumerate(zip(self.frames, self.ts, strict=True)):
                # The clip's pace, so the viewer shows its frames as a camera's.
                await asyncio.sleep(max(0.0, began + frame_id * 0.1 - time.monotonic()))
                await cam.send(jpeg, frame_id, capture_ts_us=capture)
                ack = await cam.receive()
                assert ack.frame_id == frame_id, ack

    def start(self) -> ClipSender:
        self.thread.start()
        return self

    def join(self) -> None:
        self.thread.join(60)
        assert not self.thread.is_alive(), "the clip was not sent within 60 s"
        assert self.failure is None, f"sending the clip failed: {self.failure!r}"


def counter(page: Page, rule: str) -> Any:
    return page.locator(f'.tile[data-stream="{STREAM}"] .counters li[data-rule="{rule}"]')


# What the tile draws of the rules, and its boxes with their track ids.
RULES_JS = """(stream) => {
  const tile = document.querySelector(`.tile[data-stream="${stream}"]`);
  const svg = tile.querySelector("svg.rules");
  const line = (g) => {
    const l = g.querySelector("line");
    return { name: g.dataset.rule, points: JSON.parse(g.dataset.points),
             xy: ["x1", "y1", "x2", "y2"].map((k) => Number(l.getAttribute(k))),
             arrow: JSON.parse(g.dataset.arrow), text: g.querySelector("text.name").textContent };
  };
  const zone = (g) => ({ name: g.dataset.rule,
    polygon: g.querySelector("polygon.area").getAttribute("points"),
    text: g.querySelector("text.name").textContent });
  return {
    viewBox: svg.getAttribute("viewBox"),
    lines: [...svg.querySelectorAll("g.line")].map(line),
    zones: [...svg.querySelectorAll("g.zone")].map(zone),
  };
}"""

TRACKED_BOX_JS = """(stream) => {
  const tile = document.querySelector(`.tile[data-stream="${stream}"]`);
  const boxes = [...tile.querySelectorAll("svg.boxes g.box")]
    .filter((g) => Number(g.dataset.track) >= 0);
  return boxes.length ? boxes.map((g) => ({ label: g.dataset.label, track: Number(g.dataset.track),
                                            text: g.querySelector("text").textContent })) : null;
}"""


def test_rules_track_ids_counters_and_events_on_a_tile_then_drawn_rules_count(
    page: Page,
    stack: Stack,
    start_gateway: Any,
    start_worker: Any,
    start_analytics: Any,
    media: Path,
    tmp_path: Path,
) -> None:
    worker = start_worker(wait=False)
    gateway = start_gateway()
    analytics = start_analytics(VAE_ANALYTICS_RULES=str(rules_file(tmp_path)))
    worker.wait_http("/readyz", timeout=90)
    # The rules file's rules are the rules in force: the gateway has them for the viewer.
    deadline = time.monotonic() + 60
    while status_of(f"{gateway.http}/v1/rules") != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    in_force = get_json(f"{gateway.http}/v1/rules?format=json")
    assert in_force["yaml"] == RULES_YAML
    assert [s["pattern"] for s in in_force["streams"]] == ["clip-*"]

    page.goto(viewer_url(gateway.http, f"layout=1&streams={STREAM}"))
    tile = page.locator(f'.tile[data-stream="{STREAM}"]')
    # Both of the tile's sockets are open before anything is sent: it misses nothing.
    expect(tile).to_have_attribute("data-events", "open", timeout=WAIT_MS)
    expect(tile).to_have_attribute("data-state", "waiting", timeout=WAIT_MS)
    dog = (media / "dog.jpg").read_bytes()
    first = ClipSender(ws_url(gateway), dog, time.time_ns() // 1000).start()

    # 1. The rules in force, drawn in the frame's pixels: the line at x = 0.5 with its "in"
    # arrow pointing right (drawn top to bottom), the zone over the right quarter.
    expect(tile).to_have_attribute("data-rules", "2", timeout=WAIT_MS)
    drawn = page.evaluate(RULES_JS, STREAM)
    assert drawn["viewBox"] == f"0 0 {W} {H}"
    (line,) = drawn["lines"]
    assert (line["name"], line["text"]) == ("middle", "middle")
    assert line["xy"] == [W / 2, 0, W / 2, H]
    tail, head = line["arrow"]["tail"], line["arrow"]["head"]
    assert head[0] > W / 2 > tail[0] and head[1] == pytest.approx(tail[1])
    (zone,) = drawn["zones"]
    assert zone["name"] == "right" == zone["text"]
    left, right_edge, bottom = f"{0.75 * W:.1f}", f"{W:.1f}", f"{H:.1f}"
    assert zone["polygon"] == f"{left},0.0 {right_edge},0.0 {right_edge},{bottom} {left},{bottom}"

    # 2. Track ids on the boxes, e.g. "car #0 83%".
    tracked = page.wait_for_function(f"({TRACKED_BOX_JS})({json.dumps(STREAM)})", timeout=WAIT_MS)
    boxes = tracked.json_value()
    car = next(b for b in boxes if b["label"] == "car")
    assert car["text"].startswith(f"car #{car['track']} ")
    page.wait_for_timeout(300)  # the picture a person would see mid-clip
    screenshot(page, "analytics-mid-clip")

    # 3. Counters: the clip's exact counts, and in the end from closed windows only.
    first.join()
    middle, right = counter(page, "middle"), counter(page, "right")
    expect(middle).to_have_attribute("data-in", "2", timeout=WAIT_MS)
    expect(middle).to_have_attribute("data-out", "1")
    expect(right).to_have_attribute("data-entries", "2", timeout=WAIT_MS)
    for rule in (middle, right):  # every window closed: the counts took the events over
        expect(rule).to_have_attribute("data-pending", "0", timeout=WAIT_MS)
    expect(middle).to_have_text("middle in 2 out 1")
    expect(right).to_have_attribute("data-now", "0")  # the car was lost: nobody inside
    board = get_json(f"{gateway.http}/v1/streams/{STREAM}/counts")
    totals = {t["rule"]: t for t in board["totals"]}
    assert (totals["middle"]["crossed_in"], totals["middle"]["crossed_out"]) == (2, 1)

    # 4. The events, newest first, with their media (lazily, from the media endpoints).
    events = page.locator("#events li.event")
    expect(events).to_have_count(len(EXPECTED_NEWEST_FIRST), timeout=WAIT_MS)
    listed = events.evaluate_all(
        "(items) => items.map((li) => ({ ...li.dataset,"
        " text: li.querySelector('.what').textContent }))"
    )
    assert [(e["kind"], e["direction"]) for e in listed] == EXPECTED_NEWEST_FIRST
    assert {(e["stream"], e["label"], e["track"]) for e in listed} == {
        (STREAM, "car", str(car["track"]))
    }
    assert {e["rule"] for e in listed} == {"middle", "right"}
    assert listed[-1]["text"] == f"car #{car['track']} crossed middle (in)"
    # Snapshots (GET /v1/events/{id}/snapshot.jpg: the event's best frame, its box drawn)
    # of the entries in view, and the newest one's clip played on demand.
    newest = listed[0]["eventId"]
    for item in events.all()[:3]:
        snapshot = item.locator("img.snapshot")
        expect(snapshot).to_have_js_property("naturalWidth", W, timeout=30_000)
        assert snapshot.evaluate("(img) => img.naturalHeight") == H
        src = snapshot.get_attribute("data-src") or ""
        assert src.startswith(f"{gateway.http}/v1/events/{item.get_attribute('data-event-id')}/")
        assert "/snapshot.jpg?token=" in src
    first_item = events.first
    assert first_item.locator("video").count() == 0  # no clip fetched until asked for
    first_item.get_by_role("button", name="Play the clip of").click()
    video = first_item.locator("video.clip")
    expect(video).to_have_js_property("readyState", 4, timeout=30_000)
    assert video.evaluate("(v) => [v.videoWidth, v.videoHeight, v.duration > 0]") == [W, H, True]
    assert f"/v1/events/{newest}/clip.mp4?token=" in (video.get_attribute("data-src") or "")
    screenshot(page, "analytics")

    # 5. Draw a line with the mouse (x = 0.3, top to bottom: "in" is left to right), name
    # it, count cars only, save: the API returns it, and it counts the clip's next pass.
    page.get_by_role("button", name=f"Draw a line or zone on {STREAM}").click()
    editor = tile.locator("form.rule-editor")
    expect(editor).to_be_visible()
    stage = tile.locator(".stage").bounding_box()
    assert stage is not None
    for y in (0.02, 0.98):
        page.mouse.click(stage["x"] + 0.3 * stage["width"], stage["y"] + y * stage["height"])
    expect(editor).to_have_attribute("data-points", "2")
    editor.get_by_label("Name").fill("drawn")
    editor.get_by_label("Classes").fill("car")
    expect(editor.get_by_label("Applies to")).to_have_value("clip-*")
    screenshot(page, "analytics-drawing")
    editor.get_by_role("button", name="Save rule").click()
    notice = tile.locator(".tile-notice")
    expect(notice).to_have_text("Saved line drawn for clip-*.", timeout=30_000)
    expect(editor).to_be_hidden()
    saved = get_json(f"{gateway.http}/v1/rules?format=json")["streams"][0]
    (new_line,) = [entry for entry in saved["lines"] if entry["name"] == "drawn"]
    assert new_line["classes"] == ["car"]
    (ax, ay), (bx, by) = new_line["points"]
    assert (ax, bx) == pytest.approx((0.3, 0.3), abs=0.01)
    assert (ay, by) == pytest.approx((0.02, 0.98), abs=0.01)
    assert [entry["name"] for entry in saved["lines"]] == ["middle", "drawn"]  # kept the rest
    expect(tile).to_have_attribute("data-rules", "3", timeout=15_000)
    drawn_counter = counter(page, "drawn")
    expect(drawn_counter).to_have_attribute("data-in", "0")

    # A zone too: four corners over the left part, closed by clicking the first again.
    page.get_by_role("button", name=f"Draw a line or zone on {STREAM}").click()
    editor.get_by_label("zone").check()
    corners = [(0.02, 0.5), (0.4, 0.5), (0.4, 0.98), (0.02, 0.98), (0.02, 0.5)]
    for x, y in corners:
        page.mouse.click(stage["x"] + x * stage["width"], stage["y"] + y * stage["height"])
    expect(editor).to_have_attribute("data-points", "4")
    editor.get_by_label("Name").fill("lot")
    editor.get_by_label("Classes").fill("car")
    editor.get_by_label("Loitering after (s)").fill("30")
    editor.get_by_role("button", name="Save rule").click()
    expect(notice).to_have_text("Saved zone lot for clip-*.", timeout=30_000)
    saved = get_json(f"{gateway.http}/v1/rules?format=json")["streams"][0]
    (new_zone,) = saved["zones"][1:]
    assert (new_zone["name"], new_zone["classes"], new_zone["loiter_s"]) == ("lot", ["car"], 30)
    flat = [v for corner in new_zone["polygon"] for v in corner]
    assert flat == pytest.approx([v for corner in corners[:4] for v in corner], abs=0.01)
    expect(tile).to_have_attribute("data-rules", "4", timeout=15_000)
    lot = counter(page, "lot")
    expect(lot).to_have_attribute("data-entries", "0")
    # The analytics have both saved documents (loads 2 and 3 from the rules topic: the
    # first was the file's rules, published there at start).
    loaded = f"rules loaded from {stack.env['VAE_TOPICS_RULES']}"
    deadline = time.monotonic() + 60
    while analytics.log(1000).count(loaded) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert analytics.log(1000).count(loaded) == 3, analytics.log()

    # The clip's next pass, after the first in the clip's time (whose last frame was dated
    # 3 s after the clip: capture times stay in the past), 0.15 → 0.9 → 0.15 → 0.9 crosses
    # x = 0.3 in, out, in, and enters the lot (x < 0.4) twice: once on the way out, once
    # on the way back, where it stays while it turns (the track is confirmed after 3
    # frames, its first side after 3 more: it starts at x = 0.15, inside, unseen).
    time.sleep(max(0.0, (first.last_us - time.time_ns() // 1000) / 1e6))
    second = ClipSender(ws_url(gateway), dog, time.time_ns() // 1000).start()
    expect(drawn_counter).to_have_attribute("data-in", "1", timeout=WAIT_MS)
    expect(middle).to_have_attribute("data-in", "3", timeout=WAIT_MS)
    # The picture for README: the car tracked, crossing, with counters and events.
    page.wait_for_function(
        f"""() => {{
            const tile = document.querySelector('.tile[data-stream="{STREAM}"]');
            return tile.dataset.tracked === "true" && ({TRACKED_BOX_JS})("{STREAM}");
        }}""",
        timeout=WAIT_MS,
    )
    screenshot(page, "analytics-viewer")
    second.join()
    expect(drawn_counter).to_have_attribute("data-in", "2", timeout=WAIT_MS)
    expect(drawn_counter).to_have_attribute("data-out", "1")
    expect(lot).to_have_attribute("data-entries", "2")
    expect(drawn_counter).to_have_attribute("data-pending", "0", timeout=WAIT_MS)
    expect(middle).to_have_attribute("data-in", "4")
    expect(middle).to_have_attribute("data-out", "2")
    screenshot(page, "analytics-drawn-line")


def test_what_the_viewer_says_without_the_admin_scope_and_without_an_events_media(
    page: Page, start_gateway: Any
) -> None:
    gateway = start_gateway()
    viewer_only = issue(TEST_SECRET, ["subscribe:*"], 3600, subject="viewer")
    page.goto(f"{gateway.http}/#token={viewer_only}&layout=1&streams={STREAM}")
    expect(page.locator("#rules-status")).to_contain_text("needs a token with the admin scope")
    page.get_by_role("button", name=f"Draw a line or zone on {STREAM}").click()
    editor = page.locator(f'.tile[data-stream="{STREAM}"] form.rule-editor')
    expect(editor.locator(".editor-status")).to_have_text(
        "Saving rules needs a token with the admin scope (this one has subscribe:*)."
    )
    expect(editor.get_by_role("button", name="Save rule")).to_be_disabled()
    # An event the gateway has no media for (here: an id it does not know, 404) says so.
    unknown = "00000000-0000-0000-0000-000000000000"
    expect(page.locator("#events li.empty")).to_be_visible()
    assert status_of(f"{gateway.http}/v1/events/{unknown}/snapshot.jpg") == 404
    page.evaluate(
        """(id) => window.viewer.events.add({ event_id: id, stream_id: "clip-1", rule: "middle",
             kind: "line_crossed", phase: "", direction: "in", label: "car", track_id: 99,
             start_ts_us: Date.now() * 1000, end_ts_us: Date.now() * 1000 })""",
        unknown,
    )
    missing = page.locator(f'#events li[data-event-id="{unknown}"] .media-missing')
    # (asked again twice first: the gateway indexes an event a moment after pushing it)
    expect(missing).to_have_text("Snapshot not available", timeout=15_000)
    expect(missing).to_have_attribute("data-status", "404")
    page.locator(f'#events li[data-event-id="{unknown}"]').get_by_role("button").click()
    expect(missing).to_have_text("Clip not available", timeout=15_000)
    screenshot(page, "analytics-no-admin")

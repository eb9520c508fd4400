"""The viewer's pure logic (client/web/js), run in the browser it is written for.

No pipeline here: client/web is served by a plain static server and each module is
imported into a blank page of that origin, so these run in about a second.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.conftest import REPO

pytestmark = pytest.mark.browser


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def web_origin() -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(REPO / "pipeline" / "gateway" / "web"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def blank(browser: Browser, web_origin: str) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{web_origin}/js/")  # a same-origin page that runs none of the viewer
    yield page
    context.close()


def js(page: Page, body: str) -> Any:
    """Run an async function body in the page (modules load with `await import(...)`)."""
    return page.evaluate(f"async () => {{ {body} }}")


def test_backoff_doubles_to_a_cap_with_bounded_jitter(blank: Page) -> None:
    delays = js(
        blank,
        """
        const { Backoff } = await import("/js/backoff.js");
        const middle = new Backoff({ random: () => 0.5 });
        const plain = Array.from({ length: 7 }, () => middle.next());
        middle.reset();
        const low = new Backoff({ random: () => 0 });
        const high = new Backoff({ random: () => 0.999999 });
        return { plain, again: middle.next(), low: low.next(), high: high.next(),
                 highCapped: Array.from({ length: 8 }, () => high.next()).pop() };
        """,
    )
    assert delays["plain"] == [500, 1000, 2000, 4000, 8000, 10000, 10000]
    assert delays["again"] == 500
    assert delays["low"] == 400 and delays["high"] == 600  # ±20 %
    assert delays["highCapped"] == 10000  # jitter never exceeds the cap


def test_stream_states_from_the_gateways_clock(blank: Page) -> None:
    states = js(
        blank,
        """
        const { classifyStream, lagFrames } = await import("/js/streams.js");
        const now = 1_000_000_000_000;
        const s = (frameAgoMs, detAgoMs) => ({
          frame_ts_us: frameAgoMs === null ? 0 : now - frameAgoMs * 1000,
          detections_ts_us: detAgoMs === null ? 0 : now - detAgoMs * 1000,
        });
        return {
          live: classifyStream(s(100, 300), now),
          edge: classifyStream(s(5000, 5000), now),
          noDetections: classifyStream(s(100, null), now),
          detectionsStopped: classifyStream(s(100, 6000), now),
          stale: classifyStream(s(6000, 100), now),
          neverFramed: classifyStream(s(null, 100), now),
          lag: lagFrames({ frame_id: 40, detections_frame_id: 37 }),
          lagUnknown: lagFrames({ frame_id: 40, detections_frame_id: -1 }),
        };
        """,
    )
    assert states == {
        "live": "live",
        "edge": "live",
        "noDetections": "no detections",
        "detectionsStopped": "no detections",
        "stale": "stale",
        "neverFramed": "stale",
        "lag": 3,
        "lagUnknown": None,
    }


def test_stream_search_and_limit(blank: Page) -> None:
    found = js(
        blank,
        """
        const { matchStreams } = await import("/js/streams.js");
        const streams = Array.from({ length: 300 }, (_, i) => ({ stream_id: `cam-${i}` }));
        const all = matchStreams(streams, "", 200);
        const some = matchStreams(streams, " CAM-29", 200);
        return { all: [all.shown.length, all.hidden],
                 some: some.shown.map((s) => s.stream_id), hidden: some.hidden };
        """,
    )
    assert found["all"] == [200, 100]
    assert found["some"] == ["cam-29"] + [f"cam-29{i}" for i in range(10)]
    assert found["hidden"] == 0


def test_boxes_are_matched_to_frames_by_id_and_time(blank: Page) -> None:
    result = js(
        blank,
        """
        const { DetectionRing, boxesFor } = await import("/js/matching.js");
        const ring = new DetectionRing(3);
        const d = (frame_id, ts) => ({ frame_id, gateway_ts_us: ts, objects: [] });
        ring.add(d(10, 1_000_000));
        ring.add(d(11, 1_100_000));
        const pick = (frameId, tsUs) => {
          const p = boxesFor(ring, { frameId, tsUs });
          return [p.match, p.detections && p.detections.frame_id, p.ageMs];
        };
        const exact = pick(11, 1_100_000);
        const reusedId = pick(11, 1_500_000);       // same id, another frame: not these boxes
        const newer = pick(14, 1_400_000);          // detections of #11 are 300 ms older
        const tooOld = pick(40, 4_200_000);         // 3.1 s later: nothing drawn
        const beforeAll = pick(9, 900_000);
        ring.add(d(12, 1_200_000));
        ring.add(d(13, 1_300_000));                 // capacity 3: #10 goes
        const evicted = ring.get(10) === undefined && ring.size === 3;
        ring.add(d(0, 2_000_000));                  // a camera reconnected: ids restart
        const restarted = pick(0, 2_000_000);
        return { exact, reusedId, newer, tooOld, beforeAll, evicted, restarted };
        """,
    )
    assert result["exact"] == ["exact", 11, 0]
    assert result["reusedId"] == ["earlier", 11, 400]
    assert result["newer"] == ["earlier", 11, 300]
    assert result["tooOld"] == ["none", None, None]
    assert result["beforeAll"] == ["none", None, None]
    assert result["evicted"] is True
    assert result["restarted"] == ["exact", 0, 0]


def test_clock_offset_trusts_the_shortest_round_trip(blank: Page) -> None:
    clock = js(
        blank,
        """
        const { ClockOffset } = await import("/js/clock.js");
        const clock = new ClockOffset();
        const before = [clock.known, clock.offsetMs];
        clock.update(10_500, 0, 1000);     // rtt 1000: offset 10 000 ± 500
        clock.update(20_150, 10_000, 10_100); // rtt 100: offset 10 100 ± 50
        clock.update(30_900, 20_000, 20_800); // rtt 800
        return { before, offset: clock.offsetMs, now: clock.serverNowMs(5) };
        """,
    )
    assert clock == {"before": [False, 0], "offset": 10100, "now": 10105}


def test_rates_and_latency_percentiles(blank: Page) -> None:
    rates = js(
        blank,
        """
        const { RateMeter, LatencyWindow, counterRates } = await import("/js/rates.js");
        const meter = new RateMeter(3000);
        for (let t = 0; t <= 1000; t += 200) meter.tick(t);
        const fiveFps = meter.rate(1000);
        const later = meter.rate(5000);   // every tick left the window
        const latency = new LatencyWindow(4);
        [500, 100, 300, 200, 400, NaN].forEach((v) => latency.add(v)); // 500 left; NaN ignored
        const samples = [
          { at: 1000, byId: new Map([["a", { frames: 10, detections: 8 }],
                                     ["b", { frames: 50, detections: 50 }]]) },
          { at: 2000, byId: new Map([["a", { frames: 15, detections: 10 }],
                                     ["d", { frames: 0, detections: 0 }]]) },
        ];
        const now = [{ stream_id: "a", frames: 20, detections: 13 },  // from the oldest poll
                     { stream_id: "b", frames: 3, detections: 1 },    // gateway restarted
                     { stream_id: "c", frames: 5, detections: 5 },    // new: no rate yet
                     { stream_id: "d", frames: 4, detections: 2 }];   // seen since t=2000
        const perStream = Object.fromEntries(counterRates(samples, now, 3000));
        return { fiveFps, later, p50: latency.percentile(50), p95: latency.percentile(95),
                 empty: new LatencyWindow().percentile(50), perStream };
        """,
    )
    assert rates["fiveFps"] == pytest.approx(5.0)
    assert rates["later"] == 0
    assert rates["p50"] == 200 and rates["p95"] == 400 and rates["empty"] is None
    assert rates["perStream"] == {
        "a": {"framesPerS": 5, "detectionsPerS": 2.5},
        "d": {"framesPerS": 4, "detectionsPerS": 2},
    }


def test_class_filter(blank: Page) -> None:
    result = js(
        blank,
        """
        const { ClassFilter } = await import("/js/classes.js");
        const f = new ClassFilter();
        const objects = [{ label: "person" }, { label: "car" }, { label: "person" }];
        f.count(objects);
        const everything = f.filter(objects).length;
        f.toggle("car");
        const cars = f.filter(objects).map((o) => o.label);
        f.toggle("dog");   // asked for before any was seen: still offered
        const labels = f.labels();
        f.toggle("car");
        f.clear();
        return { everything, cars, labels, allowsAfterClear: f.allows("anything") };
        """,
    )
    assert result["everything"] == 3
    assert result["cars"] == ["car"]
    assert result["labels"] == [
        {"label": "person", "count": 2, "selected": False},
        {"label": "car", "count": 1, "selected": True},
        {"label": "dog", "count": 0, "selected": True},
    ]
    assert result["allowsAfterClear"] is True


def test_view_state_in_the_url(blank: Page) -> None:
    result = js(
        blank,
        """
        const v = await import("/js/viewstate.js");
        const twelve = Array.from({ length: 12 }, (_, i) => `s${i}`).join(",");
        return {
          parsed: v.parseViewState(
            "#layout=4&streams=cam-1,bad%20id,cam-2,cam-1&classes=person,car"),
          badLayout: v.parseViewState("#layout=5").layout,
          empty: v.parseViewState(""),
          tooMany: v.parseViewState("#streams=" + twelve).streams.length,
          formatted: v.formatViewState(
            { layout: 9, streams: ["a", "b.c"], classes: ["traffic light"] }),
          layouts: [0, 1, 2, 4, 5, 9, 12].map(v.layoutFor),
        };
        """,
    )
    assert result["parsed"] == {
        "layout": 4,
        "streams": ["cam-1", "cam-2"],
        "classes": ["person", "car"],
    }
    assert result["badLayout"] is None
    assert result["empty"] == {"layout": None, "streams": [], "classes": []}
    assert result["tooMany"] == 9
    assert result["formatted"] == "#layout=9&streams=a,b.c&classes=traffic+light"
    assert result["layouts"] == [1, 1, 4, 4, 9, 9, 9]


def test_overlapping_labels_are_placed_apart(blank: Page) -> None:
    spots = js(
        blank,
        """
        const { placeLabels } = await import("/js/overlay.js");
        const box = (score, top) =>
          ({ left: 130, top, right: 320, bottom: 540, text: "dog 83%", score });
        return placeLabels([box(0.38, 212), box(0.83, 207)], 768, 576, 20);
        """,
    )
    cat, dog = spots
    assert dog["y"] == pytest.approx(207 - 26)  # the better score keeps the spot above its box
    assert cat["y"] >= dog["y"] + dog["h"] or cat["y"] + cat["h"] <= dog["y"]


def test_recent_detections_summary_and_camera_messages(blank: Page) -> None:
    result = js(
        blank,
        """
        const { summarize } = await import("/js/panel.js");
        const { cameraUnavailable, explainCameraError } = await import("/js/camera.js");
        const { socketBase } = await import("/js/socket.js");
        const o = (label) => ({ label, score: 0.5 });
        return {
          summary: summarize([o("person"), o("car"), o("person"), o("bus"), o("person")]),
          insecure: cameraUnavailable({ isSecureContext: false, navigator: {} }),
          noApi: cameraUnavailable({ isSecureContext: true, navigator: {} }),
          ok: cameraUnavailable(
            { isSecureContext: true, navigator: { mediaDevices: { getUserMedia() {} } } }),
          denied: explainCameraError({ name: "NotAllowedError" }),
          ws: socketBase({ protocol: "http:", host: "h:8080" }),
          wss: socketBase({ protocol: "https:", host: "h" }),
        };
        """,
    )
    assert result["summary"] == "person ×3, bus, car"
    assert "https://" in result["insecure"] and "localhost" in result["insecure"]
    assert "getUserMedia" in result["noApi"]
    assert result["ok"] is None
    assert "permission" in result["denied"]
    assert (result["ws"], result["wss"]) == ("ws://h:8080", "wss://h")


def test_the_token_moves_from_the_fragment_to_session_storage(blank: Page) -> None:
    result = js(
        blank,
        """
        const auth = await import("/js/auth.js");
        const store = new Map();
        const storage = {
          getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
        const replaced = [];
        const history = { replaceState: (_s, _t, url) => replaced.push(url) };
        const loc = { hash: "#token=abc.def.ghi&layout=4&streams=a,b", pathname: "/", search: "" };
        const adopted = auth.adoptToken(loc, storage, history);
        const again = auth.adoptToken({ hash: "", pathname: "/", search: "" }, storage, history);
        const b64 = (o) => btoa(JSON.stringify(o)).replaceAll("=", "");
        const jwt = (exp) => `${b64({ alg: "HS256" })}.${b64({ exp })}.sig`;
        const now = 1_700_000_000_000;
        return {
          adopted, again, replaced,
          url: auth.withToken("ws://h:1/v1/subscribe?streams=a", "t k"),
          none: auth.withToken("http://h:1/v1/streams", ""),
          missing: auth.tokenProblem("", now),
          expired: auth.tokenProblem(jwt(now / 1000 - 3600), now),
          fresh: auth.tokenProblem(jwt(now / 1000 + 3600), now),
          garbage: auth.tokenProblem("not-a-jwt", now),
        };
        """,
    )
    assert result["adopted"] == result["again"] == "abc.def.ghi"
    assert result["replaced"] == ["#layout=4&streams=a,b"]  # the view stays, the token goes
    assert result["url"] == "ws://h:1/v1/subscribe?streams=a&token=t+k"
    assert result["none"] == "http://h:1/v1/streams"
    assert "needs a token" in result["missing"] and "expired" in result["expired"]
    assert result["fresh"] == "" and result["garbage"]

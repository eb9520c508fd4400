"""The viewer's pure logic (client/web/js), run in the browser it is written for.

No pipeline here: client/web is served by a plain static server and each module is
imported into a blank page of that origin, so these run in about a second.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from pipeline.protocol.rules import rules_document
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


# ---- analytics in the viewer: rule geometry, the rules document, counters, events ----


def test_rule_points_map_between_fractions_and_frame_pixels(blank: Page) -> None:
    result = js(
        blank,
        """
        const g = await import("/js/geometry.js");
        const frame = { width: 640, height: 360 };
        return {
          pixels: g.toPixels([0.5, 0.25], frame),
          back: g.toFraction([320, 90], frame),
          rounded: g.toFraction([100, 100], frame),
          clamped: g.toFraction([-12, 400], frame),  // a click in the letterbox margin
          parsed: g.parsePoints(" 0.5,0  0.5,1 "),
          badPair: g.parsePoints("0.5,0 2,1"),
          formatted: g.formatPoints([[0.5, 0], [0.25, 1]]),
        };
        """,
    )
    assert result["pixels"] == [320, 90]
    assert result["back"] == [0.5, 0.25]
    assert result["rounded"] == [0.1563, 0.2778]  # 4 decimals
    assert result["clamped"] == [0, 1]
    assert result["parsed"] == [[0.5, 0], [0.5, 1]]
    assert result["badPair"] is None
    assert result["formatted"] == "0.5,0 0.25,1"


def test_the_in_arrow_points_the_way_in_goes(blank: Page) -> None:
    # README: `in` moves from the side where cross(B−A, p−A) > 0 to the side where it is < 0
    # (image coordinates, y down); for a line drawn top to bottom, left to right.
    result = js(
        blank,
        """
        const g = await import("/js/geometry.js");
        const frame = { width: 640, height: 360 };
        const lines = {
          topToBottom: [[0.5, 0], [0.5, 1]],
          bottomToTop: [[0.5, 1], [0.5, 0]],
          leftToRight: [[0, 0.5], [1, 0.5]],
          diagonal: [[0.1, 0.2], [0.9, 0.7]],
        };
        const out = {};
        for (const [name, [a, b]] of Object.entries(lines)) {
          const arrow = g.inArrow(a, b, frame);
          const tail = g.toFraction(arrow.tail, frame);
          const head = g.toFraction(arrow.head, frame);
          out[name] = {
            dx: Math.sign(Math.round(arrow.head[0] - arrow.tail[0])),
            dy: Math.sign(Math.round(arrow.head[1] - arrow.tail[1])),
            tailSide: Math.sign(g.cross(a, b, tail)),
            headSide: Math.sign(g.cross(a, b, head)),
            length: Math.hypot(arrow.head[0] - arrow.tail[0], arrow.head[1] - arrow.tail[1]),
            mid: arrow.mid,
          };
        }
        return out;
        """,
    )
    assert (result["topToBottom"]["dx"], result["topToBottom"]["dy"]) == (1, 0)  # left to right
    assert (result["bottomToTop"]["dx"], result["bottomToTop"]["dy"]) == (-1, 0)
    assert (result["leftToRight"]["dx"], result["leftToRight"]["dy"]) == (0, -1)  # upward
    for name, arrow in result.items():
        assert (arrow["tailSide"], arrow["headSide"]) == (1, -1), name
        assert arrow["length"] == pytest.approx(360 * 0.12), name
    assert result["diagonal"]["mid"] == pytest.approx([320, 162])


def test_rule_patterns_match_as_the_analytics_match_them(blank: Page) -> None:
    patterns = ["door-*", "cam-?", "cam-[12]", "cam-[!1]", "a.b", "[", "x[", "*", "clip-1"]
    ids = ["door-1", "door-", "cam-1", "cam-3", "cam-10", "a.b", "axb", "[", "x[", "clip-1"]
    got = js(
        blank,
        f"""
        const {{ globMatches }} = await import("/js/rules.js");
        const patterns = {patterns!r};
        const ids = {ids!r};
        return patterns.map((p) => ids.map((id) => globMatches(p, id)));
        """,
    )
    assert got == [[fnmatch.fnmatchcase(i, p) for i in ids] for p in patterns]


def test_a_drawn_rule_is_added_where_it_applies(blank: Page) -> None:
    result = js(
        blank,
        """
        const r = await import("/js/rules.js");
        const doc = { streams: [
          { pattern: "lobby", zones: [{ name: "desk", polygon: [[0, 0], [1, 0], [1, 1]] }] },
          { pattern: "door-*", anchor: "center",
            lines: [{ name: "door", points: [[0.5, 0], [0.5, 1]] }] },
        ] };
        const line = (name) => ({ name, points: [[0, 0.5], [1, 0.5]] });
        const toGlob = r.withRule(doc, "door-2",
          { kind: "line", rule: line("sill"), scope: "door-*" });
        const alone = r.withRule(doc, "door-2", { kind: "line", rule: line("sill"), scope: "" });
        const fresh = r.withRule(doc, "yard", { kind: "zone",
          rule: { name: "grass", polygon: [[0, 0], [1, 0], [0, 1]] }, scope: "" });
        const clash = r.withRule(doc, "door-2", { kind: "zone",
          rule: { name: "door", polygon: [[0, 0], [1, 0], [0, 1]] }, scope: "door-*" });
        const gone = r.withRule(doc, "door-2", { kind: "line", rule: line("x"), scope: "gate-*" });
        return {
          toGlob: toGlob.doc.streams[1].lines.map((l) => l.name), toGlobPattern: toGlob.pattern,
          alone: alone.doc.streams.map((e) => [e.pattern, e.anchor || "", r.ruleNames(e)]),
          fresh: fresh.doc.streams.map((e) => e.pattern), freshPattern: fresh.pattern,
          clash: clash.error, gone: gone.error,
          unchanged: doc.streams[1].lines.length,
          applies: [r.rulesFor(alone.doc, "door-2").pattern,
                    r.rulesFor(alone.doc, "door-9").pattern, r.rulesFor(doc, "nowhere")],
        };
        """,
    )
    assert result["toGlob"] == ["door", "sill"] and result["toGlobPattern"] == "door-*"
    # Only door-2: a copy of door-*'s entry (its door line still applies), placed before it.
    assert result["alone"] == [
        ["lobby", "", ["desk"]],
        ["door-2", "center", ["door", "sill"]],
        ["door-*", "center", ["door"]],
    ]
    assert result["fresh"] == ["lobby", "door-*", "yard"] and result["freshPattern"] == "yard"
    assert "already used" in result["clash"]
    assert "gate-*" in result["gone"]
    assert result["unchanged"] == 1  # the document in force is not modified
    assert result["applies"] == ["door-2", "door-*", None]


def test_the_yaml_the_viewer_saves_reads_back_as_the_same_rules(blank: Page) -> None:
    doc = {
        "streams": [
            {"pattern": "123", "track_lost_s": 1e-7},
            {
                "pattern": 'Tür "A" *',
                "anchor": "center",
                "lines": [
                    {"name": "on", "points": [[0.0001, 0], [1, 0.5]], "classes": None},
                    {"name": "door: #1", "points": [[0.5, 0], [0.5, 1]], "min_frames": 2},
                ],
                "zones": [
                    {
                        "name": "yes",
                        "polygon": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.9]],
                        "classes": ["person", "traffic light"],
                        "loiter_s": 2.5,
                    }
                ],
            },
            {"pattern": "empty"},
        ]
    }
    text = js(
        blank,
        f"""
        const {{ toYaml }} = await import("/js/rules.js");
        return toYaml({json.dumps(doc)});
        """,
    )
    assert rules_document(text) == doc  # parse_rules accepted it too (rules_document checks)
    assert js(blank, 'return (await import("/js/rules.js")).toYaml({ streams: [] });') == (
        "streams: {}\n"
    )
    assert rules_document("streams: {}\n") == {"streams": []}


def test_counters_take_events_until_their_window_closes(blank: Page) -> None:
    result = js(
        blank,
        """
        const { RuleCounts } = await import("/js/counters.js");
        const c = new RuleCounts();
        const row = (entry) => Object.fromEntries(c.rows(entry).map((r) =>
          [r.rule, { in: r.in, out: r.out, entries: r.entries, now: r.now, pending: r.pending }]));
        const w = (start, values, revision = 0) => ({ rule: "middle", kind: "line", label: "car",
          window_start_us: start, window_end_us: start + 60, crossed_in: 0, crossed_out: 0,
          entries: 0, peak_occupancy: 0, revision, ...values });
        const entry = { lines: [{ name: "middle" }, { name: "unused" }],
                        zones: [{ name: "right" }] };
        // At start: 5 in since the analytics started, 2 of them in the one window listed.
        c.loadSummary({ totals: [{ rule: "middle", kind: "line", label: "car", crossed_in: 5,
                                   crossed_out: 1, entries: 0, peak_occupancy: 0 }],
                        windows: [w(0, { crossed_in: 2 })] });
        const atStart = row(entry);
        const e = (id, ts, kind, direction, rule = "middle") =>
          ({ event_id: id, rule, kind, direction, label: "car", start_ts_us: ts, end_ts_us: ts });
        c.applyEvent(e("a", 70, "line_crossed", "in"));     // window [60, 120): not closed yet
        c.applyEvent(e("b", 80, "line_crossed", "out"));
        const repeat = c.applyEvent(e("a", 70, "line_crossed", "in")); // redelivered
        c.applyEvent(e("z", 90, "zone_enter", "", "right"));
        c.applyEvent(e("x", 95, "zone_exit", "", "right"));  // exits are not counted
        c.applyTracks({ objects: [{ track_id: 3, zones: ["right"] },
                                  { track_id: -1, zones: ["right"] },
                                  { track_id: 4, zones: [] }] });
        const live = row(entry);
        c.applyCounts(w(60, { crossed_in: 1 }));             // the window closes: it has "a" only
        const closedEarly = row(entry);
        c.applyCounts(w(60, { crossed_in: 1, crossed_out: 1 }, 1)); // late data: revision 1
        c.applyCounts(w(60, { crossed_in: 1 }, 0));          // an older revision again: ignored
        const revised = row(entry);
        return { atStart, repeat, live, closedEarly, revised };
        """,
    )
    assert result["atStart"] == {
        "middle": {"in": 5, "out": 1, "entries": 0, "now": 0, "pending": 0},
        "unused": {"in": 0, "out": 0, "entries": 0, "now": 0, "pending": 0},
        "right": {"in": 0, "out": 0, "entries": 0, "now": 0, "pending": 0},
    }
    assert result["repeat"] is False
    assert result["live"]["middle"] == {"in": 6, "out": 2, "entries": 0, "now": 0, "pending": 2}
    assert result["live"]["right"] == {"in": 0, "out": 0, "entries": 1, "now": 1, "pending": 1}
    # Both crossings fall in the closed window: the counts take them over (revision 0 had
    # only one: the other comes back with revision 1), never counted twice.
    assert result["closedEarly"]["middle"] == {"in": 6, "out": 1, "entries": 0, "now": 0,
                                               "pending": 0}  # fmt: skip
    assert result["revised"]["middle"] == {"in": 6, "out": 2, "entries": 0, "now": 0, "pending": 0}


def test_the_event_list_is_newest_first_bounded_and_each_event_once(blank: Page) -> None:
    result = js(
        blank,
        """
        const { EventLog, describeEvent } = await import("/js/events.js");
        const log = new EventLog(3);
        const e = (id, end, start = end) => ({ event_id: id, start_ts_us: start, end_ts_us: end });
        const added = [e("a", 10), e("b", 30), e("c", 20), e("b", 30), e("d", 40), e("old", 5),
                       e("exit", 35, 1)].map((x) => log.add(x));
        return {
          added, ids: log.entries.map((x) => x.event_id), size: log.ids.size,
          crossed: describeEvent({ kind: "line_crossed", label: "car", track_id: 3, rule: "middle",
                                   direction: "in", phase: "", start_ts_us: 0, end_ts_us: 0 }),
          left: describeEvent({ kind: "zone_exit", label: "person", track_id: 7, rule: "lobby",
                                direction: "", phase: "", start_ts_us: 0, end_ts_us: 12_400_000 }),
          loiter: describeEvent({ kind: "loitering", label: "person", track_id: -1, rule: "lobby",
                                  direction: "", phase: "start", start_ts_us: 0, end_ts_us: 9 }),
        };
        """,
    )
    # A zone exit is placed by when it happened (its end), not when the visit began.
    assert result["added"] == [True, True, True, False, True, False, True]
    assert result["ids"] == ["d", "exit", "b"] and result["size"] == 3
    assert result["crossed"] == "car #3 crossed middle (in)"
    assert result["left"] == "person #7 left lobby after 12.4 s"
    assert result["loiter"] == "person loitering start in lobby"


def test_track_ids_pair_with_the_boxes_of_their_frame(blank: Page) -> None:
    result = js(
        blank,
        """
        const { TrackRing, withTracks } = await import("/js/matching.js");
        const { describe, nameOf } = await import("/js/overlay.js");
        const ring = new TrackRing(2);
        const detections = { frame_id: 7, capture_ts_us: 700, objects: [
          { label: "person", score: 0.87 }, { label: "car", score: 0.5 },
          { label: "dog", score: 0.4 }] };
        ring.add({ frame_id: 7, capture_ts_us: 700, objects: [
          { label: "person", track_id: 12 }, { label: "car", track_id: -1 },
          { label: "cat", track_id: 5 }] });
        const found = ring.of(detections);
        const objects = withTracks(detections.objects, found);
        const otherTime = ring.of({ frame_id: 7, capture_ts_us: 701 });
        ring.add({ frame_id: 8, capture_ts_us: 800, objects: [] });
        ring.add({ frame_id: 9, capture_ts_us: 900, objects: [] });   // capacity 2: #7 goes
        return { ids: objects.map((o) => o.track_id ?? null), names: objects.map(nameOf),
                 text: describe(objects), otherTime: otherTime ?? null,
                 evicted: ring.of(detections) ?? null,
                 untouched: withTracks(detections.objects, undefined) === detections.objects };
        """,
    )
    assert result["ids"] == [12, -1, None]  # the third disagrees on the label: no id
    assert result["names"] == ["person #12", "car", "dog"]
    assert result["text"] == "3 objects: person #12 87%, car 50%, dog 40%"
    assert result["otherTime"] is None and result["evicted"] is None
    assert result["untouched"] is True


def test_saving_rules_needs_the_admin_scope(blank: Page) -> None:
    result = js(
        blank,
        """
        const auth = await import("/js/auth.js");
        const editor = await import("/js/editor.js");
        const b64 = (o) => btoa(JSON.stringify(o)).replaceAll("=", "");
        const jwt = (claims) => `${b64({ alg: "HS256" })}.${b64(claims)}.sig`;
        return {
          scope: auth.scopesOf(jwt({ scope: "subscribe:* admin" })),
          scp: auth.scopesOf(jwt({ scp: ["subscribe:cam-*", 3] })),
          admin: auth.adminProblem(jwt({ scope: "subscribe:* admin" })),
          viewerOnly: auth.adminProblem(jwt({ scope: "subscribe:*" })),
          none: auth.adminProblem(jwt({ exp: 1 })),
          noToken: auth.adminProblem(""),
          classes: [editor.parseClasses(" person, car,,person "), editor.parseClasses(" ")],
          name: editor.freshName("line",
            { lines: [{ name: "line-1" }], zones: [{ name: "line-2" }] }),
        };
        """,
    )
    assert result["scope"] == ["subscribe:*", "admin"]
    assert result["scp"] == ["subscribe:cam-*"]
    assert result["admin"] == "" and result["noToken"] == ""
    assert result["viewerOnly"] == (
        "Saving rules needs a token with the admin scope (this one has subscribe:*)."
    )
    assert "no scopes" in result["none"]
    assert result["classes"] == [["person", "car"], None]
    assert result["name"] == "line-3"


def test_media_are_asked_again_while_the_gateway_is_busy_or_has_not_indexed_the_event(
    blank: Page,
) -> None:
    result = js(
        blank,
        """
        const { fetchMedia, retryable } = await import("/js/events.js");
        const real = window.fetch;
        const run = async (statuses) => {
          const asked = [];
          const waits = [];
          window.fetch = async () => {
            const status = statuses[Math.min(asked.length, statuses.length - 1)];
            asked.push(status);
            return status === 200
              ? new Response(new Blob(["jpeg"]), { status })
              : new Response(JSON.stringify({ error: "x", message: `said ${status}` }),
                             { status, headers: { "Retry-After": "2" } });
          };
          const got = await fetchMedia("/m", { wait: async (ms) => { waits.push(ms); } });
          return { asked, waits: waits.map((ms) => Math.floor(ms / 1000)),
                   got: got.blob ? await got.blob.text() : got };
        };
        try {
          return {
            busyThenOk: await run([503, 503, 200]),
            neverIndexed: await run([404]),
            gone: await run([410]),
            alwaysBusy: await run([503]),
            rules: [retryable(503, 0), retryable(404, 1), retryable(404, 2), retryable(410, 0),
                    retryable(0, 4), retryable(0, 5)],
          };
        } finally {
          window.fetch = real;
        }
        """,
    )
    assert result["busyThenOk"] == {"asked": [503, 503, 200], "waits": [2, 3], "got": "jpeg"}
    assert result["neverIndexed"]["asked"] == [404, 404, 404]
    assert result["neverIndexed"]["got"] == {"status": 404, "message": "said 404"}
    gone = {"status": 410, "message": "said 410"}
    assert result["gone"] == {"asked": [410], "waits": [], "got": gone}
    assert len(result["alwaysBusy"]["asked"]) == 6  # then it says the media is not there
    assert result["rules"] == [True, True, False, False, True, False]

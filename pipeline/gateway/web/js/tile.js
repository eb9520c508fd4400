/**
 * One live tile: a stream's frame with its boxes, its readouts and its connection state.
 *
 * Detections come from the tile's own subscribe socket. Each detections message names its
 * frame; the tile fetches that very frame from the gateway's recent frames
 * (GET /v1/streams/{id}/frames/{frame_id}.jpg) and shows frame and boxes together, so the
 * boxes line up. One fetch at a time: when detections arrive faster than frames can be
 * fetched, only the newest waiting one is shown (the display rate adapts, nothing queues).
 * When that frame is no longer held (or the gateway keeps none), the latest frame is shown
 * and matching.js decides what is drawn on it. While no detections come (no worker yet),
 * the latest frame is refreshed every second so the picture stays live.
 *
 * With the analytics running, the tile also draws the rules in force for its stream (lines
 * with their `in` arrow, zones), labels boxes with their track ids (the `tracks` messages
 * that follow detections on the same socket), keeps live counters per line and zone (its
 * own WS /v1/events socket, and GET /v1/streams/{id}/counts each time that socket opens),
 * hands the events to the page's list, and has an editor to draw and save a new rule.
 */
import { askForToken, withToken } from "./auth.js";
import { RuleCounts } from "./counters.js";
import { RuleEditor } from "./editor.js";
import { boxesFor, DetectionRing, EARLIER, EXACT, TrackRing, withTracks } from "./matching.js";
import { describe, drawBoxes } from "./overlay.js";
import { drawRules } from "./rulelayer.js";
import { rulesFor } from "./rules.js";
import { LatencyWindow, RateMeter } from "./rates.js";
import { FAILED, OPEN, ReconnectingSocket, WAITING } from "./socket.js";
import { STALE_AFTER_MS } from "./streams.js";

const IDLE_REFRESH_MS = 1000;
// With the analytics running, a frame waits this long at most for its track ids, so boxes
// and ids reach the screen together; "running" = a tracks message in the last few seconds.
// When ids come later than that as a rule (analytics far behind), frames do not wait.
const TRACKS_WAIT_MS = 250;
const TRACKS_FLOWING_MS = 3000;

function formatMs(ms) {
  if (ms === null || !Number.isFinite(ms)) return "–";
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class Tile {
  /**
   * @param {object} options
   * @param {string} options.streamId
   * @param {string} options.httpBase the gateway's http(s) origin
   * @param {string} options.wsBase the gateway's ws(s) origin
   * @param {import("./clock.js").ClockOffset} options.clock
   * @param {import("./classes.js").ClassFilter} options.filter
   * @param {(streamId: string, detections: object) => void} options.onDetections
   * @param {(streamId: string) => void} options.onClose
   * @param {(tile: Tile) => void} options.onChange
   * @param {import("./rules.js").RulesSource} options.rules the rules in force
   * @param {(event: object) => void} options.onEvent an analytics event of this stream
   */
  constructor({ streamId, httpBase, wsBase, clock, filter, onDetections, onClose, onChange, rules, onEvent }) {
    this.streamId = streamId;
    this.httpBase = httpBase;
    this.clock = clock;
    this.filter = filter;
    this.onDetections = onDetections;
    this.onChange = onChange;
    this.rules = rules;
    this.onEvent = onEvent;
    this.ring = new DetectionRing(64);
    this.tracks = new TrackRing(64);
    this.counts = new RuleCounts();
    this.latestTracksTs = -Infinity;
    this.lastTracksAt = -Infinity;
    this.tracksWaiter = null; // {detections, resolve} of the frame being fetched
    this.rulesDrawn = "";
    this.countersScheduled = false;
    this.detectionRate = new RateMeter();
    this.shownRate = new RateMeter();
    this.latency = new LatencyWindow(30);
    this.tracksLag = new LatencyWindow(30); // ms from a frame's detections to its track ids
    this.arrivals = new Map(); // frame key -> when its detections arrived (performance.now)
    this.want = null; // newest detections whose frame is not shown yet
    this.fetching = false;
    this.shown = null; // {frameId, tsUs, width, height}
    this.lastDetectionsAt = 0;
    this.dropped = 0;
    this.frameUrl = null;
    this.aborter = new AbortController();
    this.destroyed = false;
    this.build(onClose);
    const id = encodeURIComponent(streamId);
    this.socket = new ReconnectingSocket(withToken(`${wsBase}/v1/subscribe?streams=${id}`), {
      onMessage: (message) => this.receive(message),
      onState: () => this.refreshStatus(),
    });
    this.analytics = new ReconnectingSocket(withToken(`${wsBase}/v1/events?streams=${id}`), {
      onMessage: (message) => this.receiveAnalytics(message),
      onState: (state) => {
        this.element.dataset.events = state.status;
      },
    });
    this.framesUrl = `${httpBase}/v1/streams/${id}/frames/`;
    this.latestUrl = `${httpBase}/v1/streams/${id}/latest.jpg`;
    this.countsUrl = `${httpBase}/v1/streams/${id}/counts`;
    this.editor = new RuleEditor({
      streamId,
      wsBase,
      stage: this.stage,
      layer: this.draftSvg,
      frame: () => this.shown,
      rules,
      onSaved: (message) => this.note(message),
      onToggle: (open) => this.drawButton.setAttribute("aria-pressed", String(open)),
    });
    this.element.insertBefore(this.editor.element, this.caption);
  }

  build(onClose) {
    const root = make("figure", "tile");
    root.dataset.stream = this.streamId;
    root.dataset.state = "connecting";
    root.setAttribute("aria-label", `Stream ${this.streamId}`);
    const head = make("div", "tile-head");
    head.append(make("h2", "tile-name", this.streamId));
    this.badge = make("span", "badge", "connecting…");
    head.append(this.badge);
    const draw = make("button", "tile-draw", "✎");
    draw.type = "button";
    draw.title = `Draw a line or zone on ${this.streamId}`;
    draw.setAttribute("aria-label", `Draw a line or zone on ${this.streamId}`);
    draw.addEventListener("click", () => this.editor.toggle());
    draw.setAttribute("aria-pressed", "false");
    this.drawButton = draw;
    head.append(draw);
    const close = make("button", "tile-close", "×");
    close.type = "button";
    close.title = `Stop watching ${this.streamId}`;
    close.setAttribute("aria-label", `Stop watching ${this.streamId}`);
    close.addEventListener("click", () => onClose(this.streamId));
    head.append(close);
    this.stage = make("div", "stage");
    this.img = make("img", "frame");
    this.img.alt = `Live picture of ${this.streamId}`;
    this.img.hidden = true; // until the first frame
    this.svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    this.svg.classList.add("boxes");
    this.svg.setAttribute("role", "img");
    this.svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    this.rulesSvg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    this.rulesSvg.classList.add("rules");
    this.rulesSvg.setAttribute("role", "img");
    this.rulesSvg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    this.draftSvg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    this.draftSvg.classList.add("draft");
    this.draftSvg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    this.draftSvg.setAttribute("aria-hidden", "true");
    this.placeholder = make("p", "placeholder", "Waiting for the first frame…");
    this.stage.append(this.img, this.rulesSvg, this.svg, this.draftSvg, this.placeholder);
    this.counters = make("ul", "counters");
    this.counters.setAttribute("aria-label", `Counts on ${this.streamId}`);
    this.counters.hidden = true;
    this.notice = make("p", "tile-notice");
    this.notice.setAttribute("role", "status");
    this.notice.hidden = true;
    const caption = make("figcaption", "tile-foot");
    this.readouts = make("span", "readouts", "– fps · e2e –");
    this.matchNote = make("span", "match-note", "");
    caption.append(this.readouts, this.matchNote);
    this.caption = caption;
    root.append(head, this.stage, this.counters, this.notice, caption);
    this.element = root;
  }

  start() {
    this.socket.start();
    this.analytics.start();
    this.idleTimer = setInterval(() => this.refreshIdle(), IDLE_REFRESH_MS);
    this.refreshIdle();
  }

  destroy() {
    this.destroyed = true;
    this.socket.stop();
    this.analytics.stop();
    clearInterval(this.idleTimer);
    this.aborter.abort();
    if (this.frameUrl) URL.revokeObjectURL(this.frameUrl);
    this.element.remove();
  }

  /** Try again at once (the gateway is back), instead of waiting out the backoff. */
  reconnectNow() {
    for (const socket of [this.socket, this.analytics]) {
      if (socket.state.status === WAITING) {
        socket.stop();
        socket.start();
      }
    }
  }

  receive(message) {
    if (message.type === "dropped") {
      this.dropped += message.count;
      return;
    }
    if (message.type === "tracks" && message.stream_id === this.streamId) {
      this.receiveTracks(message);
      return;
    }
    if (message.type !== "detections" || message.stream_id !== this.streamId) return;
    this.ring.add(message);
    this.arrivals.set(`${message.frame_id}:${message.capture_ts_us}`, performance.now());
    while (this.arrivals.size > 64) this.arrivals.delete(this.arrivals.keys().next().value);
    this.lastDetectionsAt = performance.now();
    this.detectionRate.tick();
    this.onDetections(this.streamId, message);
    this.want = message;
    this.pump();
  }

  /** Show the newest wanted frame; one fetch at a time. */
  async pump() {
    if (this.fetching || document.hidden) return;
    this.fetching = true;
    try {
      while (this.want && !this.destroyed) {
        const detections = this.want;
        this.want = null;
        const tracked = this.waitForTracks(detections);
        let response = await this.fetchFrame(`${this.framesUrl}${detections.frame_id}.jpg`);
        if (response && response.status === 404) response = await this.fetchFrame(this.latestUrl);
        await tracked;
        if (response && response.ok) await this.display(response);
      }
    } finally {
      this.fetching = false;
    }
  }

  async fetchFrame(url) {
    try {
      const response = await fetch(withToken(url), { cache: "no-store", signal: this.aborter.signal });
      if (response.status === 401) askForToken("The gateway refused the token (expired or revoked?).");
      return response;
    } catch {
      return null; // the gateway is away: the socket's state says so
    }
  }

  async refreshIdle() {
    this.refreshStatus();
    if (this.fetching || document.hidden || this.destroyed) return;
    // Only while no detections come: otherwise they choose the frame (and it has boxes).
    if (performance.now() - this.lastDetectionsAt < IDLE_REFRESH_MS * 1.5) return;
    this.fetching = true;
    try {
      const response = await this.fetchFrame(this.latestUrl);
      if (response && response.ok) await this.display(response);
    } finally {
      this.fetching = false;
    }
    if (this.want) this.pump();
  }

  async display(response) {
    const frameId = Number(response.headers.get("X-Frame-Id"));
    const tsUs = Number(response.headers.get("X-Frame-Ts-Us"));
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const img = make("img", "frame");
    img.alt = this.img.alt;
    img.src = url;
    try {
      await img.decode();
    } catch {
      URL.revokeObjectURL(url);
      return;
    }
    if (this.destroyed) {
      URL.revokeObjectURL(url);
      return;
    }
    // Frame and boxes change in the same task, so they reach the screen together.
    this.img.replaceWith(img);
    this.img = img;
    if (this.frameUrl) URL.revokeObjectURL(this.frameUrl);
    this.frameUrl = url;
    this.shown = { frameId, tsUs, width: img.naturalWidth, height: img.naturalHeight };
    this.stage.style.aspectRatio = `${img.naturalWidth} / ${img.naturalHeight}`;
    this.placeholder.hidden = true;
    const pick = this.render();
    this.shownRate.tick();
    if (pick.match === EXACT) {
      this.latency.add(this.clock.serverNowMs() - pick.detections.capture_ts_us / 1000);
    }
    this.refreshStatus();
  }

  /** Resolves once these detections' track ids are here, or at once when none will come. */
  waitForTracks(detections) {
    const late = this.tracksLag.values.length >= 5 && this.tracksLag.percentile(50) > TRACKS_WAIT_MS;
    if (late || performance.now() - this.lastTracksAt > TRACKS_FLOWING_MS || this.tracks.of(detections)) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.tracksWaiter = null;
        resolve();
      }, TRACKS_WAIT_MS);
      this.tracksWaiter = {
        detections,
        resolve: () => {
          clearTimeout(timer);
          this.tracksWaiter = null;
          resolve();
        },
      };
    });
  }

  /** The analytics' objects of a frame, with track ids: label the boxes if it is shown. */
  receiveTracks(tracks) {
    this.tracks.add(tracks);
    this.lastTracksAt = performance.now();
    const arrived = this.arrivals.get(`${tracks.frame_id}:${tracks.capture_ts_us}`);
    if (arrived !== undefined) this.tracksLag.add(this.lastTracksAt - arrived);
    const waiter = this.tracksWaiter;
    if (waiter && this.tracks.of(waiter.detections) === tracks) waiter.resolve();
    if (tracks.capture_ts_us >= this.latestTracksTs) {
      this.latestTracksTs = tracks.capture_ts_us;
      this.counts.applyTracks(tracks);
      this.scheduleCounters();
    }
    const shown = this.shownDetections;
    if (shown && shown.frame_id === tracks.frame_id && shown.capture_ts_us === tracks.capture_ts_us) {
      this.render();
    }
  }

  /** A message of the events socket: events and window counts of this stream. */
  receiveAnalytics(message) {
    if (message.type === "hello") {
      this.fetchCounts(); // after every (re)connect: the totals so far
    } else if (message.type === "event" && message.stream_id === this.streamId) {
      if (this.counts.applyEvent(message)) this.onEvent?.(message);
    } else if (message.type === "counts" && message.stream_id === this.streamId) {
      this.counts.applyCounts(message);
    } else {
      return;
    }
    this.scheduleCounters();
  }

  async fetchCounts() {
    const response = await this.fetchFrame(this.countsUrl);
    if (!response || !response.ok) return;
    try {
      this.counts.loadSummary(await response.json());
    } catch {
      return;
    }
    this.scheduleCounters();
  }

  /** The rules in force changed: draw them (and their counters) again. */
  rulesChanged() {
    this.rulesDrawn = "";
    this.drawRules();
    this.scheduleCounters();
    if (this.editor.isOpen) this.editor.refreshChoices();
  }

  /** Lines and zones over the frame, redrawn when the rules, the frame size or the tile size change. */
  drawRules() {
    if (!this.shown) return;
    const { width, height } = this.shown;
    const entry = rulesFor(this.rules.state.doc, this.streamId);
    const key = `${width}x${height}@${this.rulesSvg.clientWidth}x${this.rulesSvg.clientHeight}:${this.rules.state.yaml}`;
    if (key === this.rulesDrawn) return;
    this.rulesDrawn = key;
    const drawn = drawRules(this.rulesSvg, { width, height }, entry);
    this.element.dataset.rules = String(drawn);
    this.element.dataset.rulesPattern = entry ? entry.pattern : "";
  }

  scheduleCounters() {
    if (this.countersScheduled || this.destroyed) return;
    this.countersScheduled = true;
    requestAnimationFrame(() => {
      this.countersScheduled = false;
      this.renderCounters();
    });
  }

  renderCounters() {
    const rows = this.counts.rows(rulesFor(this.rules.state.doc, this.streamId));
    this.counters.hidden = rows.length === 0;
    this.counters.replaceChildren(...rows.map((row) => {
      const item = make("li", `counter ${row.kind}`);
      const data = item.dataset;
      data.rule = row.rule;
      data.kind = row.kind;
      const name = make("span", "rule-name", row.rule);
      const labels = [...row.labels.entries()].map(([label, v]) => row.kind === "line"
        ? `${label}: in ${v.crossed_in}, out ${v.crossed_out}`
        : `${label}: ${v.entries} entries`);
      const since = row.pending ? `; ${row.pending} from events since the last closed window` : "";
      item.title = (labels.length ? labels.join("; ") : "nothing counted yet") + since;
      if (row.kind === "line") {
        data.in = String(row.in);
        data.out = String(row.out);
        item.append(name, " ", make("span", "count", `in ${row.in}`), " ", make("span", "count", `out ${row.out}`));
      } else {
        data.now = String(row.now);
        data.entries = String(row.entries);
        item.append(name, " ", make("span", "count", `now ${row.now}`), " ", make("span", "count", `entries ${row.entries}`));
      }
      data.pending = String(row.pending);
      return item;
    }));
  }

  /** A short message under the picture (a rule saved), gone after a while. */
  note(message) {
    this.notice.textContent = message;
    this.notice.hidden = false;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => {
      this.notice.hidden = true;
    }, 8000);
  }

  /** Draw the boxes that belong on the shown frame (again, after a filter change). */
  render() {
    if (!this.shown) return { match: "none", detections: null, ageMs: null };
    this.drawRules();
    if (this.editor.isOpen) this.editor.redraw(false);
    const pick = boxesFor(this.ring, this.shown);
    this.shownDetections = pick.detections;
    const tracked = pick.detections ? withTracks(pick.detections.objects, this.tracks.of(pick.detections)) : [];
    const objects = this.filter.filter(tracked);
    const drawn = drawBoxes(this.svg, this.shown, objects, { dashed: pick.match === EARLIER });
    const data = this.element.dataset;
    data.frameId = String(this.shown.frameId);
    data.frameTsUs = String(this.shown.tsUs);
    data.match = pick.match;
    data.boxCount = String(drawn);
    data.boxesFrameId = pick.detections ? String(pick.detections.frame_id) : "";
    data.boxesTsUs = pick.detections ? String(pick.detections.gateway_ts_us) : "";
    data.tracked = String(Boolean(pick.detections && this.tracks.of(pick.detections)));
    const hidden = pick.detections ? pick.detections.objects.length - drawn : 0;
    const filtered = hidden ? ` (${hidden} hidden by the class filter)` : "";
    if (pick.match === EXACT) {
      this.matchNote.textContent = `frame #${this.shown.frameId} · ${drawn} box${drawn === 1 ? "" : "es"}${filtered}`;
    } else if (pick.match === EARLIER) {
      this.matchNote.textContent =
        `frame #${this.shown.frameId} · dashed: boxes of frame #${pick.detections.frame_id}, ` +
        `${formatMs(pick.ageMs)} earlier${filtered}`;
    } else {
      const newest = this.ring.latestBefore(this.shown.tsUs);
      const why = newest
        ? `newest boxes are for a frame ${formatMs((this.shown.tsUs - newest.gateway_ts_us) / 1000)} older: not drawn`
        : "no detections for this frame yet";
      this.matchNote.textContent = `frame #${this.shown.frameId} · ${why}`;
    }
    this.svg.setAttribute(
      "aria-label",
      pick.match === EXACT ? describe(objects) : `${describe(objects)} (from an earlier frame)`,
    );
    return pick;
  }

  /** The badge: connection first, then whether frames and detections are flowing. */
  status() {
    const state = this.socket.state;
    if (state.status === WAITING) {
      const seconds = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
      return ["reconnecting", `reconnecting in ${seconds} s`];
    }
    if (state.status === FAILED) return ["failed", `refused: ${state.reason}`];
    if (state.status !== OPEN) return ["connecting", "connecting…"];
    const now = performance.now();
    const frameAgeMs = this.shown ? this.clock.serverNowMs() - this.shown.tsUs / 1000 : Infinity;
    if (!this.shown || (frameAgeMs > STALE_AFTER_MS && this.clock.known)) {
      return this.shown ? ["stale", "stale"] : ["waiting", "waiting for frames"];
    }
    if (!this.lastDetectionsAt || now - this.lastDetectionsAt > STALE_AFTER_MS) {
      return ["no-detections", "no detections"];
    }
    return ["live", "live"];
  }

  refreshStatus() {
    const [state, text] = this.status();
    if (this.element.dataset.state !== state) {
      this.element.dataset.state = state;
      this.onChange?.(this);
    }
    if (this.badge.textContent !== text) this.badge.textContent = text;
    const fps = this.shownRate.rate();
    const p50 = this.latency.percentile(50);
    const drops = this.dropped ? ` · ${this.dropped} dropped` : "";
    this.readouts.textContent = `${fps.toFixed(1)} fps · e2e ${formatMs(p50)}${drops}`;
    this.readouts.title =
      `${fps.toFixed(1)} frames shown per second, ${this.detectionRate.rate().toFixed(1)} detections ` +
      `per second received; end-to-end latency (capture to frame and boxes on screen), median of the ` +
      `last ${this.latency.values.length}: ${formatMs(p50)}, p95 ${formatMs(this.latency.percentile(95))}` +
      (this.tracksLag.values.length
        ? `; track ids arrive ${formatMs(this.tracksLag.percentile(50))} after their boxes (median)`
        : "");
  }
}

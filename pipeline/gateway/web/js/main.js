/**
 * The viewer page: stream list, grid of live tiles, class filter, recent detections, the
 * analytics (rules drawn on tiles, counters, recent events, drawing new rules), and
 * "Use my camera". What is on screen lives in the URL fragment (viewstate.js), so a view
 * can be bookmarked; everything reconnects by itself when the gateway restarts.
 */
import { adoptToken, askForToken, tokenProblem } from "./auth.js";
import { CameraPublisher, cameraUnavailable } from "./camera.js";
import { ClassFilter } from "./classes.js";
import { ClockOffset } from "./clock.js";
import { EventListView } from "./events.js";
import { DetectionPanel } from "./panel.js";
import { counterRates } from "./rates.js";
import { RulesSource } from "./rules.js";
import { socketBase, WAITING } from "./socket.js";
import { StreamListView } from "./streamlist.js";
import { StreamDirectory } from "./streams.js";
import { Tile } from "./tile.js";
import { formatViewState, isStreamId, LAYOUTS, layoutFor, parseViewState } from "./viewstate.js";

const $ = (id) => document.getElementById(id);
const MAX_TILES = LAYOUTS[LAYOUTS.length - 1];
const AUTO_PICK = 4;
const RATE_WINDOW_MS = 5000; // frame rates in the list: counters compared over about 5 s

class Viewer {
  constructor() {
    this.httpBase = location.origin;
    this.wsBase = socketBase(location);
    this.clock = new ClockOffset();
    const initial = parseViewState(location.hash);
    this.filter = new ClassFilter(initial.classes);
    this.layout = initial.layout || layoutFor(Math.max(1, initial.streams.length));
    this.selected = initial.streams.slice(0, this.layout);
    this.layoutChosen = initial.layout !== null;
    this.autoPick = this.selected.length === 0;
    this.tiles = new Map();
    this.grid = $("grid");
    this.panel = new DetectionPanel($("recent"), this.filter);
    this.events = new EventListView($("events"), this.httpBase);
    this.rules = new RulesSource(this.httpBase, (state) => this.onRules(state));
    this.list = new StreamListView($("stream-list"), $("stream-count"), (id, on) => this.toggle(id, on));
    this.samples = []; // recent counter snapshots of GET /v1/streams, oldest first
    this.directoryState = null;
    this.directory = new StreamDirectory(this.httpBase, {
      clock: this.clock,
      onUpdate: (update) => this.onStreams(update),
      onState: (state) => this.onDirectoryState(state),
    });
    this.camera = new CameraPublisher({
      wsBase: this.wsBase,
      video: $("camera-preview"),
      onStatus: (status) => this.showCameraStatus(status),
    });
    this.wire();
    this.renderGrid();
    this.renderFilter();
    this.panel.render();
    this.directory.start();
    this.rules.start();
    setInterval(() => {
      this.refreshConnection();
      this.renderFilter();
    }, 1000);
  }

  wire() {
    for (const radio of document.querySelectorAll('input[name="layout"]')) {
      radio.addEventListener("change", () => this.setLayout(Number(radio.value), true));
    }
    $("stream-search").addEventListener("input", (event) => this.list.setQuery(event.target.value));
    window.addEventListener("hashchange", () => this.applyHash());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) for (const tile of this.tiles.values()) tile.pump();
    });
    const streamInput = $("camera-stream");
    streamInput.value =
      localStorage.getItem("vae.camera.stream") || `webcam-${Math.random().toString(16).slice(2, 6)}`;
    $("camera-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.toggleCamera();
    });
    const unavailable = cameraUnavailable();
    if (unavailable) $("camera-status").textContent = unavailable;
  }

  announce(message) {
    $("announce").textContent = message;
  }

  applyHash() {
    const state = parseViewState(location.hash);
    this.autoPick = false;
    this.filter.selected = new Set(state.classes);
    if (state.layout) {
      this.layout = state.layout;
      this.layoutChosen = true;
    }
    this.selected = state.streams.slice(0, this.layout);
    this.renderGrid();
    this.renderFilter();
    this.rerender();
  }

  saveHash() {
    const hash = formatViewState({
      layout: this.layout,
      streams: this.selected,
      classes: [...this.filter.selected],
    });
    if (hash !== location.hash) history.replaceState(null, "", hash === "#" ? location.pathname : hash);
  }

  setLayout(layout, chosen = false) {
    this.layout = layout;
    this.layoutChosen ||= chosen;
    if (chosen) this.autoPick = false;
    if (this.selected.length > layout) {
      const removed = this.selected.slice(layout);
      this.selected = this.selected.slice(0, layout);
      this.announce(`Stopped watching ${removed.join(", ")} to fit the grid.`);
    }
    this.renderGrid();
  }

  /** Put a stream on the grid or take it off; false refuses (the grid is full). */
  toggle(streamId, on) {
    this.autoPick = false;
    if (!on) {
      this.selected = this.selected.filter((id) => id !== streamId);
      this.renderGrid();
      return true;
    }
    if (this.selected.includes(streamId)) return true;
    if (this.selected.length >= MAX_TILES) {
      this.announce(`The grid shows at most ${MAX_TILES} streams: take one off first.`);
      return false;
    }
    this.selected.push(streamId);
    if (this.selected.length > this.layout) this.layout = layoutFor(this.selected.length);
    this.renderGrid();
    return true;
  }

  renderGrid() {
    for (const [id, tile] of this.tiles) {
      if (!this.selected.includes(id)) {
        tile.destroy();
        this.tiles.delete(id);
        this.panel.forget(id);
      }
    }
    const cells = this.selected.map((id) => {
      let tile = this.tiles.get(id);
      if (!tile) {
        tile = new Tile({
          streamId: id,
          httpBase: this.httpBase,
          wsBase: this.wsBase,
          clock: this.clock,
          filter: this.filter,
          onDetections: (_, detections) => {
            this.filter.count(detections.objects);
            this.panel.add(detections);
          },
          onClose: (streamId) => this.toggle(streamId, false),
          onChange: () => this.refreshConnection(),
          rules: this.rules,
          onEvent: (event) => this.events.add(event),
        });
        this.tiles.set(id, tile);
        tile.start();
      }
      return tile.element;
    });
    for (let i = cells.length; i < this.layout; i += 1) {
      const empty = document.createElement("div");
      empty.className = "tile empty";
      const hint = document.createElement("p");
      hint.textContent = "Pick a stream from the list, or use your camera.";
      empty.append(hint);
      cells.push(empty);
    }
    this.grid.replaceChildren(...cells);
    this.grid.className = `grid layout-${this.layout}`;
    for (const radio of document.querySelectorAll('input[name="layout"]')) {
      radio.checked = Number(radio.value) === this.layout;
    }
    if (this.list.last) {
      const [streams, nowUs, rates] = this.list.last;
      this.list.update(streams, nowUs, rates, this.selected);
    }
    this.saveHash();
  }

  /** The rules in force changed (or could not be read): every tile draws them again. */
  onRules(state) {
    const status = $("rules-status");
    status.textContent = state.message;
    status.hidden = !state.message;
    for (const tile of this.tiles.values()) tile.rulesChanged();
  }

  rerender() {
    for (const tile of this.tiles.values()) tile.render();
    this.panel.render();
  }

  renderFilter() {
    const box = $("class-filter");
    const focused = document.activeElement && box.contains(document.activeElement)
      ? document.activeElement.dataset.label
      : undefined;
    const all = document.createElement("button");
    all.type = "button";
    all.className = "chip";
    all.dataset.label = "";
    all.textContent = "All classes";
    all.setAttribute("aria-pressed", String(this.filter.selected.size === 0));
    all.addEventListener("click", () => this.changeFilter(() => this.filter.clear()));
    const chips = [all];
    for (const { label, count, selected } of this.filter.labels()) {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chip";
      chip.dataset.label = label;
      chip.setAttribute("aria-pressed", String(selected));
      chip.textContent = `${label} `;
      const number = document.createElement("span");
      number.className = "chip-count";
      number.textContent = String(count);
      number.setAttribute("aria-label", `${count} seen`);
      chip.append(number);
      chip.addEventListener("click", () => this.changeFilter(() => this.filter.toggle(label)));
      chips.push(chip);
    }
    box.replaceChildren(...chips);
    if (focused !== undefined) chips.find((chip) => chip.dataset.label === focused)?.focus();
  }

  changeFilter(change) {
    change();
    this.renderFilter();
    this.rerender();
    this.saveHash();
  }

  onStreams({ streams, nowUs, receivedAt }) {
    while (this.samples.length && receivedAt - this.samples[0].at > RATE_WINDOW_MS) this.samples.shift();
    const rates = counterRates(this.samples, streams, receivedAt);
    const byId = new Map(streams.map((s) => [s.stream_id, { frames: s.frames, detections: s.detections }]));
    this.samples.push({ at: receivedAt, byId });
    if (this.autoPick) this.fillGrid(streams);
    this.list.update(streams, nowUs, rates, this.selected);
  }

  /**
   * Opened without a view, the grid takes the first streams as they appear (cameras
   * connect one after another), until the person picks streams or a layout.
   */
  fillGrid(streams) {
    const room = (this.layoutChosen ? this.layout : AUTO_PICK) - this.selected.length;
    if (room <= 0) return;
    const fresh = streams.map((s) => s.stream_id).filter((id) => !this.selected.includes(id));
    if (!fresh.length) return;
    this.selected.push(...fresh.slice(0, room));
    if (!this.layoutChosen) this.layout = layoutFor(this.selected.length);
    this.renderGrid();
  }

  onDirectoryState(state) {
    const recovered = this.directoryState && this.directoryState.status === WAITING && state.status === "open";
    this.directoryState = { ...state, retryAt: Date.now() + (state.retryInMs || 0) };
    $("stream-list").toggleAttribute("data-outdated", state.status === WAITING);
    if (recovered) for (const tile of this.tiles.values()) tile.reconnectNow();
    this.refreshConnection();
  }

  refreshConnection() {
    const banner = $("connection");
    const d = this.directoryState;
    const waiting = [...this.tiles.values()].filter((t) => t.socket.state.status === WAITING).length;
    let state;
    let text;
    if (!d) {
      [state, text] = ["connecting", "Connecting to the gateway…"];
    } else if (d.status === WAITING) {
      const seconds = Math.max(0, Math.ceil((d.retryAt - Date.now()) / 1000));
      state = "reconnecting";
      text = `Gateway unreachable. Reconnecting in ${seconds} s (attempt ${d.attempt})…`;
    } else if (waiting) {
      state = "reconnecting";
      text = `Connected; reconnecting ${waiting} live feed${waiting === 1 ? "" : "s"}…`;
    } else {
      [state, text] = ["connected", `Connected to ${location.host}`];
    }
    if (banner.dataset.state !== state) banner.dataset.state = state;
    if (banner.textContent !== text) banner.textContent = text;
  }

  async toggleCamera() {
    const button = $("camera-button");
    if (this.camera.running) {
      this.camera.stop();
      button.textContent = "Start camera";
      return;
    }
    const streamId = $("camera-stream").value.trim();
    if (!isStreamId(streamId)) {
      $("camera-status").textContent = "A stream id is 1-128 characters from A-Z a-z 0-9 . _ -";
      return;
    }
    localStorage.setItem("vae.camera.stream", streamId);
    const fps = Number($("camera-fps").value);
    button.disabled = true;
    try {
      await this.camera.start(streamId, fps);
      button.textContent = "Stop camera";
      this.toggle(streamId, true);
    } catch (error) {
      $("camera-status").textContent = error.message;
    } finally {
      button.disabled = false;
    }
  }

  showCameraStatus(status) {
    const parts = [status.running ? `${status.streamId}: ${status.connection}` : "camera off"];
    if (status.sent) parts.push(`${status.sent} frames sent (${Math.round(status.bytes / 1024)} KB)`);
    if (status.skipped) parts.push(`${status.skipped} skipped`);
    if (status.error) parts.push(status.error);
    const line = $("camera-status");
    if (status.error && status.error !== this.lastCameraError) this.announce(status.error);
    this.lastCameraError = status.error;
    line.textContent = parts.join(" · ");
    line.dataset.sent = String(status.sent);
    if (!status.running) $("camera-button").textContent = "Start camera";
  }
}

// First: the token leaves the fragment before the view state is read from it.
const problem = tokenProblem(adoptToken(location));
window.viewer = new Viewer();
if (problem) askForToken(problem);

/**
 * The stream list: every stream the gateway knows, its state (live / stale / no detections),
 * its frame rate and how far detections trail, with a checkbox to put it on the grid.
 * Rows are keyed by stream id and only changed text is written, so a poll per second costs
 * little even with a long list; a search box narrows it, and at most LIMIT rows are drawn.
 */
import { classifyStream, lagFrames, matchStreams } from "./streams.js";

const LIMIT = 200;

export class StreamListView {
  /**
   * @param {HTMLUListElement} list
   * @param {HTMLElement} summary where "N streams" goes
   * @param {(streamId: string, checked: boolean) => boolean} onToggle false refuses the change
   */
  constructor(list, summary, onToggle) {
    this.list = list;
    this.summary = summary;
    this.onToggle = onToggle;
    this.rows = new Map();
    this.query = "";
    this.last = null;
  }

  setQuery(query) {
    this.query = query;
    if (this.last) this.update(...this.last);
  }

  row(streamId) {
    let row = this.rows.get(streamId);
    if (row) return row;
    const item = document.createElement("li");
    item.dataset.stream = streamId;
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.addEventListener("change", () => {
      if (!this.onToggle(streamId, box.checked)) box.checked = !box.checked;
    });
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = streamId;
    label.append(box, name);
    const state = document.createElement("span");
    state.className = "badge";
    const meta = document.createElement("span");
    meta.className = "meta";
    item.append(label, state, meta);
    row = { item, box, state, meta };
    this.rows.set(streamId, row);
    return row;
  }

  /**
   * @param {object[]} streams GET /v1/streams's list
   * @param {number} nowUs the gateway's time of that list
   * @param {Map<string, {framesPerS: number}>} rates
   * @param {string[]} selected streams on the grid
   */
  update(streams, nowUs, rates, selected) {
    this.last = [streams, nowUs, rates, selected];
    const { shown, hidden } = matchStreams(streams, this.query, LIMIT);
    const items = [];
    for (const stream of shown) {
      const row = this.row(stream.stream_id);
      const state = classifyStream(stream, nowUs);
      if (row.item.dataset.state !== state) row.item.dataset.state = state;
      if (row.state.textContent !== state) row.state.textContent = state;
      const rate = rates.get(stream.stream_id);
      const lag = lagFrames(stream);
      const parts = [];
      if (rate) parts.push(`${rate.framesPerS.toFixed(1)} fps`);
      if (lag !== null) parts.push(`lag ${lag}`);
      const meta = parts.join(" · ");
      if (row.meta.textContent !== meta) row.meta.textContent = meta;
      row.box.checked = selected.includes(stream.stream_id);
      row.box.setAttribute("aria-label", `Watch ${stream.stream_id} (${state})`);
      items.push(row.item);
    }
    const current = [...this.list.children];
    if (current.length !== items.length || current.some((node, i) => node !== items[i])) {
      this.list.replaceChildren(...items);
    }
    const total = streams.length;
    const more = hidden ? ` (${hidden} more: narrow the search)` : "";
    this.summary.textContent = total === 1 ? `1 stream${more}` : `${total} streams${more}`;
    const known = new Set(streams.map((s) => s.stream_id));
    for (const id of this.rows.keys()) if (!known.has(id)) this.rows.delete(id);
  }
}

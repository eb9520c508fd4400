/**
 * The panel of recent detections of the watched streams: newest first, only messages with
 * at least one object the class filter lets through. Bounded, and redrawn at most once per
 * animation frame however fast detections arrive.
 */
import { oncePerFrame } from "./redraw.js";

const KEEP = 200;

/** "person ×6, car ×2, truck": labels by count, then name; the title keeps every score. */
export function summarize(objects) {
  const counts = new Map();
  for (const o of objects) counts.set(o.label, (counts.get(o.label) || 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([label, count]) => (count > 1 ? `${label} ×${count}` : label))
    .join(", ");
}

export class DetectionPanel {
  /**
   * @param {HTMLOListElement} list
   * @param {import("./classes.js").ClassFilter} filter
   * @param {number} shown entries on screen
   */
  constructor(list, filter, shown = 40) {
    this.list = list;
    this.filter = filter;
    this.shown = shown;
    this.entries = [];
    this.schedule = oncePerFrame(() => this.render());
  }

  add(detections, receivedAt = Date.now()) {
    if (!detections.objects.length) return;
    this.entries.unshift({ detections, receivedAt });
    if (this.entries.length > KEEP) this.entries.length = KEEP;
    this.schedule();
  }

  /** Forget a stream that left the grid. */
  forget(streamId) {
    this.entries = this.entries.filter((e) => e.detections.stream_id !== streamId);
    this.schedule();
  }

  render() {
    const items = [];
    for (const { detections, receivedAt } of this.entries) {
      const objects = this.filter.filter(detections.objects);
      if (!objects.length) continue;
      const item = document.createElement("li");
      const time = document.createElement("time");
      const at = new Date(receivedAt);
      time.dateTime = at.toISOString();
      time.textContent = at.toLocaleTimeString([], { hour12: false });
      const where = document.createElement("span");
      where.className = "where";
      where.textContent = `${detections.stream_id} #${detections.frame_id}`;
      const what = document.createElement("span");
      what.className = "what";
      what.textContent = summarize(objects);
      what.title = objects.map((o) => `${o.label} ${Math.round(o.score * 100)}%`).join(", ");
      item.append(time, " ", where, " ", what);
      items.push(item);
      if (items.length >= this.shown) break;
    }
    if (!items.length) {
      const empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = "Nothing detected yet in the streams on screen.";
      items.push(empty);
    }
    this.list.replaceChildren(...items);
  }
}

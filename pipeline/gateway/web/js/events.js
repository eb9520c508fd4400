/**
 * The list of recent analytics events of the streams on screen (from each tile's
 * WS /v1/events socket): newest first by the time each happened (its end_ts_us), bounded,
 * each event once (delivery is at least once: a repeat has the same event_id).
 *
 * Each entry shows the event's snapshot (GET /v1/events/{event_id}/snapshot.jpg, loaded
 * lazily: only once the entry scrolls into view) and plays its clip
 * (GET /v1/events/{event_id}/clip.mp4) in a <video> made only when asked for. Both need the
 * token's subscribe scope for the stream; where the gateway has no media for the event
 * (frames past the frames topic's retention, or a gateway without the endpoints) a line
 * says so in place of the picture.
 */
import { withToken } from "./auth.js";

const KEEP = 100;

/** The moment an event happened: a zone exit's or loitering's end, a crossing's time. */
export function eventTime(event) {
  return event.end_ts_us || event.start_ts_us;
}

const WORDS = {
  line_crossed: "crossed",
  zone_enter: "entered",
  zone_exit: "left",
  loitering: "loitering",
};

/** "car #3 crossed middle (in)", "person #7 left lobby after 12.4 s". */
export function describeEvent(event) {
  const who = event.track_id >= 0 ? `${event.label} #${event.track_id}` : event.label;
  const what = WORDS[event.kind] || event.kind;
  const phase = event.phase ? ` ${event.phase}` : "";
  const direction = event.direction ? ` (${event.direction})` : "";
  const stayed = event.kind === "zone_exit" || (event.kind === "loitering" && event.phase !== "start")
    ? ` after ${((event.end_ts_us - event.start_ts_us) / 1e6).toFixed(1)} s`
    : "";
  const where = event.kind === "loitering" ? ` in ${event.rule}` : ` ${event.rule}`;
  return `${who} ${what}${phase}${where}${direction}${stayed}`;
}

/** The newest `keep` events, newest first; each event_id once. */
export class EventLog {
  constructor(keep = KEEP) {
    this.keep = keep;
    this.entries = [];
    this.ids = new Set();
  }

  /** Add an event; false when it is a repeat, or older than every kept one of a full log. */
  add(event) {
    if (this.ids.has(event.event_id)) return false;
    const at = eventTime(event);
    let i = this.entries.findIndex((e) => eventTime(e) <= at);
    if (i < 0) i = this.entries.length;
    if (i >= this.keep) return false;
    this.entries.splice(i, 0, event);
    this.ids.add(event.event_id);
    while (this.entries.length > this.keep) this.ids.delete(this.entries.pop().event_id);
    return true;
  }
}

function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Media URLs of an event, with the token. */
export function mediaUrls(httpBase, eventId) {
  const base = `${httpBase}/v1/events/${encodeURIComponent(eventId)}`;
  return { snapshot: withToken(`${base}/snapshot.jpg`), clip: withToken(`${base}/clip.mp4`) };
}

export class EventListView {
  /**
   * @param {HTMLOListElement} list
   * @param {string} httpBase
   */
  constructor(list, httpBase, keep = KEEP) {
    this.list = list;
    this.httpBase = httpBase;
    this.log = new EventLog(keep);
    this.items = new Map(); // event_id -> its <li>, kept so snapshots load once
    this.scheduled = false;
    this.render();
  }

  add(event) {
    if (!this.log.add(event)) return;
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.render();
    });
  }

  render() {
    const keep = new Set(this.log.ids);
    for (const id of this.items.keys()) if (!keep.has(id)) this.items.delete(id);
    const items = this.log.entries.map((event) => {
      let item = this.items.get(event.event_id);
      if (!item) {
        item = this.item(event);
        this.items.set(event.event_id, item);
      }
      return item;
    });
    if (!items.length) {
      items.push(make("li", "empty", "No events yet in the streams on screen."));
    }
    this.list.replaceChildren(...items);
  }

  item(event) {
    const item = make("li", "event");
    const data = item.dataset;
    data.eventId = event.event_id;
    data.stream = event.stream_id;
    data.rule = event.rule;
    data.kind = event.kind;
    data.direction = event.direction || "";
    data.phase = event.phase || "";
    data.label = event.label;
    data.track = String(event.track_id);
    const urls = mediaUrls(this.httpBase, event.event_id);
    const media = make("div", "event-media");
    const img = make("img", "snapshot");
    img.loading = "lazy";
    img.decoding = "async";
    img.width = 112;
    img.height = 63;
    img.alt = `Snapshot: ${describeEvent(event)}`;
    img.addEventListener("error", () => media.replaceChildren(missing("Snapshot not available")), { once: true });
    img.src = urls.snapshot;
    media.append(img);
    const text = make("div", "event-text");
    const time = make("time", "event-time");
    const at = new Date(eventTime(event) / 1000);
    time.dateTime = at.toISOString();
    time.textContent = at.toLocaleTimeString([], { hour12: false });
    const where = make("span", "where", event.stream_id);
    const what = make("div", "what", describeEvent(event));
    const play = make("button", "play", "▶ Play clip");
    play.type = "button";
    play.setAttribute("aria-label", `Play the clip of: ${describeEvent(event)}`);
    play.addEventListener("click", () => {
      const video = make("video", "clip");
      video.controls = true;
      video.muted = true;
      video.playsInline = true;
      video.autoplay = true;
      video.preload = "auto";
      video.setAttribute("aria-label", `Clip: ${describeEvent(event)}`);
      video.addEventListener("error", () => media.replaceChildren(missing("Clip not available")), { once: true });
      video.src = urls.clip;
      media.replaceChildren(video);
      play.remove();
      video.focus();
    });
    const meta = make("div", "meta");
    meta.append(time, " · ", where);
    text.append(meta, what, play);
    item.append(media, text);
    return item;
  }
}

function missing(text) {
  const note = make("span", "media-missing", text);
  note.title = "The gateway has no media for this event (its frames may be past the frames topic's retention)";
  return note;
}

/**
 * The list of recent analytics events of the streams on screen (from each tile's
 * WS /v1/events socket): newest first by the time each happened (its end_ts_us), bounded,
 * each event once (delivery is at least once: a repeat has the same event_id).
 *
 * Each entry shows the event's snapshot (GET /v1/events/{event_id}/snapshot.jpg, fetched
 * once the entry scrolls into view) and plays its clip (GET /v1/events/{event_id}/clip.mp4)
 * in a <video> made only when asked for. Both need the token's subscribe scope for the
 * stream. The gateway makes a few media at a time and answers 503 (Retry-After) to more,
 * and indexes an event a moment after it is pushed (404 until then): both are tried again
 * (fetchMedia). Where it has no media for the event (frames past the frames topic's
 * retention: 410; no such event: 404), a line says so in place of the picture.
 */
import { withToken } from "./auth.js";
import { oncePerFrame } from "./redraw.js";

const KEEP = 100;
const MEDIA_TRIES = 6; // a busy gateway (503) is asked again, after its Retry-After
const UNKNOWN_TRIES = 3; // an event not indexed yet (404) is asked again, twice
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether a media answer may be different if asked again (the `attempt`-th, from 0). */
export function retryable(status, attempt) {
  if (status === 503 || status === 429 || status === 0) return attempt + 1 < MEDIA_TRIES;
  if (status === 404) return attempt + 1 < UNKNOWN_TRIES;
  return false;
}

/**
 * GET a media URL: `{blob}`, or `{status, message}` when the gateway has none to give
 * (after the tries `retryable` allows; 0: no answer at all).
 */
export async function fetchMedia(url, { signal, wait = sleep } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    let response = null;
    try {
      response = await fetch(url, { cache: "no-store", signal });
      if (response.ok) return { blob: await response.blob() };
    } catch (error) {
      if (signal?.aborted) throw error;
    }
    const status = response ? response.status : 0;
    if (!retryable(status, attempt)) {
      let message = response ? response.statusText : "the gateway did not answer";
      try {
        message = (await response.json()).message || message;
      } catch {
        // not a JSON error body: keep the status text
      }
      return { status, message };
    }
    const after = Number(response?.headers.get("Retry-After")) || 1;
    await wait(after * 1000 * (1 + attempt / 2) + Math.random() * 250);
  }
}

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
    this.items = new Map(); // event_id -> {item, release}: kept so snapshots load once
    this.schedule = oncePerFrame(() => this.render());
    // A snapshot is fetched once its entry is (nearly) in view of the list.
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        this.observer.unobserve(entry.target);
        entry.target.dispatchEvent(new Event("visible"));
      }
    }, { root: list, rootMargin: "200px 0px" });
    this.render();
  }

  add(event) {
    if (this.log.add(event)) this.schedule();
  }

  render() {
    const keep = new Set(this.log.ids);
    for (const [id, held] of this.items) {
      if (keep.has(id)) continue;
      held.release();
      this.items.delete(id);
    }
    const items = this.log.entries.map((event) => {
      let held = this.items.get(event.event_id);
      if (!held) {
        held = this.item(event);
        this.items.set(event.event_id, held);
      }
      return held.item;
    });
    if (!items.length) {
      items.push(make("li", "empty", "No events yet in the streams on screen."));
    }
    this.list.replaceChildren(...items);
  }

  /** One entry; `release` frees its media (the entry left the list). */
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
    const aborter = new AbortController();
    const objectUrls = [];
    const show = async (url, kind, ready) => {
      let got;
      try {
        got = await fetchMedia(url, { signal: aborter.signal });
      } catch {
        return; // the entry left the list
      }
      if (got.blob) {
        const objectUrl = URL.createObjectURL(got.blob);
        objectUrls.push(objectUrl);
        ready(objectUrl);
      } else {
        media.replaceChildren(missing(`${kind} not available`, got));
      }
    };
    const media = make("div", "event-media");
    const img = make("img", "snapshot");
    img.width = 112;
    img.height = 63;
    img.alt = `Snapshot: ${describeEvent(event)}`;
    img.dataset.src = urls.snapshot;
    media.append(img);
    media.addEventListener("visible", () => show(urls.snapshot, "Snapshot", (src) => {
      img.src = src;
    }), { once: true });
    this.observer.observe(media);
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
      play.disabled = true;
      play.textContent = "Loading clip…";
      show(urls.clip, "Clip", (src) => {
        const video = make("video", "clip");
        video.controls = true;
        video.muted = true;
        video.playsInline = true;
        video.autoplay = true;
        video.setAttribute("aria-label", `Clip: ${describeEvent(event)}`);
        video.dataset.src = urls.clip;
        video.src = src;
        media.replaceChildren(video);
        video.focus();
      }).finally(() => play.remove());
    });
    const meta = make("div", "meta");
    meta.append(time, " · ", where);
    text.append(meta, what, play);
    item.append(media, text);
    const release = () => {
      aborter.abort();
      this.observer.unobserve(media);
      for (const url of objectUrls) URL.revokeObjectURL(url);
    };
    return { item, release };
  }
}

function missing(text, { status, message }) {
  const note = make("span", "media-missing", text);
  note.title = status ? `${status}: ${message}` : message;
  note.dataset.status = String(status);
  return note;
}

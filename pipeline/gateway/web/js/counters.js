/**
 * A stream's live counters per line (in, out) and zone (entries, occupancy now).
 *
 * The analytics count in event-time windows and emit a window's counts only when it closes
 * (vae.counts, a minute by default), so counts alone would lag by a window. Events arrive at
 * once. So a counter is: the totals of closed windows (GET /v1/streams/{id}/counts at start,
 * then each `counts` message of WS /v1/events, each window at its latest revision) plus the
 * events not yet in a closed window (a `line_crossed` or `zone_enter` whose time falls in no
 * window the counts have reported for its rule and class). When the window closes its counts
 * take the events over, so nothing is counted twice; the counts are the truth in the end.
 * Events are told apart by event_id (delivery is at least once). Occupancy is the number of
 * tracked objects inside the zone in the stream's latest `tracks` message.
 */

const SEEN_IDS = 5000; // event ids remembered to drop a redelivered event
const KEEP_WINDOWS = 240; // windows held one by one; older ones are folded into the totals

function windowKey(rule, label, start) {
  return `${rule}\u0000${label}\u0000${start}`;
}

function blank() {
  return { crossed_in: 0, crossed_out: 0, entries: 0, peak_occupancy: 0 };
}

export class RuleCounts {
  constructor() {
    this.folded = new Map(); // `${rule}\0${label}` -> counts of windows no longer listed
    this.windows = new Map(); // windowKey -> latest revision of that window
    this.kinds = new Map(); // rule -> "line" | "zone"
    this.pending = new Map(); // event_id -> event not yet in a reported window
    this.seen = new Set();
    this.occupancy = new Map(); // zone -> objects inside now
  }

  /**
   * GET /v1/streams/{id}/counts: totals since the analytics started, and recent windows.
   * Replaces what the counts said so far (it is fetched again after a reconnect).
   */
  loadSummary(summary) {
    this.windows.clear();
    this.folded.clear();
    const listed = new Map();
    for (const w of summary.windows || []) {
      const key = `${w.rule}\u0000${w.label}`;
      const sum = listed.get(key) || blank();
      for (const m of ["crossed_in", "crossed_out", "entries"]) sum[m] += w[m];
      listed.set(key, sum);
    }
    for (const t of summary.totals || []) {
      const key = `${t.rule}\u0000${t.label}`;
      const sum = listed.get(key) || blank();
      const folded = blank();
      for (const m of ["crossed_in", "crossed_out", "entries"]) folded[m] = Math.max(0, t[m] - sum[m]);
      this.folded.set(key, folded);
      this.kinds.set(t.rule, t.kind);
    }
    for (const w of summary.windows || []) this.applyCounts(w);
    this.absorb();
  }

  /** A `counts` message (one window of one rule and class, at some revision). */
  applyCounts(record) {
    const key = windowKey(record.rule, record.label, record.window_start_us);
    const held = this.windows.get(key);
    if (!held || record.revision >= held.revision) this.windows.set(key, record);
    this.kinds.set(record.rule, record.kind);
    while (this.windows.size > KEEP_WINDOWS) this.foldOldest();
    this.absorb();
  }

  foldOldest() {
    let oldest = null;
    for (const [key, w] of this.windows) {
      if (!oldest || w.window_start_us < oldest[1].window_start_us) oldest = [key, w];
    }
    const [key, w] = oldest;
    this.windows.delete(key);
    const sumKey = `${w.rule}\u0000${w.label}`;
    const sum = this.folded.get(sumKey) || blank();
    for (const m of ["crossed_in", "crossed_out", "entries"]) sum[m] += w[m];
    this.folded.set(sumKey, sum);
  }

  /** An `event` message; false when it was seen before. */
  applyEvent(event) {
    if (this.seen.has(event.event_id)) return false;
    this.seen.add(event.event_id);
    if (this.seen.size > SEEN_IDS) this.seen.delete(this.seen.values().next().value);
    if (event.kind === "line_crossed") this.kinds.set(event.rule, "line");
    else this.kinds.set(event.rule, "zone");
    const counted = event.kind === "line_crossed" || event.kind === "zone_enter";
    if (counted && !this.reported(event)) this.pending.set(event.event_id, event);
    return true;
  }

  /** The latest `tracks` message: how many tracked objects each zone holds now. */
  applyTracks(tracks) {
    const now = new Map();
    for (const o of tracks.objects) {
      if (o.track_id < 0) continue;
      for (const zone of o.zones || []) now.set(zone, (now.get(zone) || 0) + 1);
    }
    this.occupancy = now;
  }

  /** Whether a window the counts reported holds this event's time (for its rule and class). */
  reported(event) {
    for (const w of this.windows.values()) {
      if (w.rule === event.rule && w.label === event.label &&
          w.window_start_us <= event.start_ts_us && event.start_ts_us < w.window_end_us) return true;
    }
    return false;
  }

  absorb() {
    for (const [id, event] of this.pending) if (this.reported(event)) this.pending.delete(id);
  }

  /**
   * One row per rule: the rules drawn on the tile first (in document order, zero when
   * nothing happened yet), then any other rule the counts or events named.
   * @param {object|null} entry the rules entry that applies to the stream
   */
  rows(entry) {
    const rows = new Map();
    const row = (rule, kind) => {
      if (!rows.has(rule)) {
        rows.set(rule, { rule, kind, in: 0, out: 0, entries: 0, now: 0, pending: 0, labels: new Map() });
      }
      return rows.get(rule);
    };
    for (const line of entry?.lines || []) row(line.name, "line");
    for (const zone of entry?.zones || []) row(zone.name, "zone");
    const add = (rule, label, values) => {
      const r = row(rule, this.kinds.get(rule) || "line");
      r.in += values.crossed_in;
      r.out += values.crossed_out;
      r.entries += values.entries;
      const byLabel = r.labels.get(label) || blank();
      for (const m of ["crossed_in", "crossed_out", "entries"]) byLabel[m] += values[m];
      r.labels.set(label, byLabel);
    };
    for (const [key, values] of this.folded) {
      const [rule, label] = key.split("\u0000");
      add(rule, label, values);
    }
    for (const w of this.windows.values()) add(w.rule, w.label, w);
    for (const e of this.pending.values()) {
      const values = blank();
      if (e.kind === "zone_enter") values.entries = 1;
      else if (e.direction === "in") values.crossed_in = 1;
      else if (e.direction === "out") values.crossed_out = 1;
      add(e.rule, e.label, values);
      rows.get(e.rule).pending += 1;
    }
    for (const [zone, count] of this.occupancy) {
      if (rows.has(zone) || this.kinds.get(zone) === "zone") row(zone, "zone").now = count;
    }
    return [...rows.values()];
  }
}

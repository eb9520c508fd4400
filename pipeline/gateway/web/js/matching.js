/**
 * Which boxes belong on the frame being shown. A frame and its detections are the same
 * frame when both the frame id and the gateway's receive time agree (the frame's
 * X-Frame-Id / X-Frame-Ts-Us headers, the detections' frame_id / gateway_ts_us): ids alone
 * repeat when a browser camera reconnects and the gateway numbers its frames from 0 again.
 *
 * When the shown frame has no detections yet (it was the latest frame, not the one the
 * detections were for), the newest detections of an *earlier* frame, at most
 * `maxAgeMs` older, are offered as EARLIER: the viewer draws them dashed and says so.
 * Anything older is not drawn at all (NONE): boxes from seconds ago would mislead.
 */

export const EXACT = "exact";
export const EARLIER = "earlier";
export const NONE = "none";

/** The detections of the last `capacity` frames of one stream, by frame id. */
export class DetectionRing {
  constructor(capacity = 64) {
    this.capacity = capacity;
    this.byId = new Map();
  }

  add(detections) {
    this.byId.delete(detections.frame_id); // a newer frame with a reused id replaces the old
    this.byId.set(detections.frame_id, detections);
    while (this.byId.size > this.capacity) this.byId.delete(this.byId.keys().next().value);
  }

  get(frameId) {
    return this.byId.get(frameId);
  }

  /** The detections whose frame reached the gateway last before `tsUs`; undefined if none. */
  latestBefore(tsUs) {
    let best;
    for (const d of this.byId.values()) {
      if (d.gateway_ts_us < tsUs && (!best || d.gateway_ts_us > best.gateway_ts_us)) best = d;
    }
    return best;
  }

  clear() {
    this.byId.clear();
  }

  get size() {
    return this.byId.size;
  }
}

/**
 * @param {DetectionRing} ring
 * @param {{frameId: number, tsUs: number}} frame the frame on screen
 * @returns {{match: string, detections: object|null, ageMs: number|null}}
 */
export function boxesFor(ring, frame, maxAgeMs = 2000) {
  const same = ring.get(frame.frameId);
  if (same && same.gateway_ts_us === frame.tsUs) return { match: EXACT, detections: same, ageMs: 0 };
  const earlier = ring.latestBefore(frame.tsUs);
  if (earlier) {
    const ageMs = (frame.tsUs - earlier.gateway_ts_us) / 1000;
    if (ageMs <= maxAgeMs) return { match: EARLIER, detections: earlier, ageMs };
  }
  return { match: NONE, detections: null, ageMs: null };
}

/**
 * The analytics' `tracks` messages of one stream (the objects of a frame with their track
 * ids), by frame: they follow the frame's detections on the subscribe socket. A frame is
 * named by its id and capture time (a tracks message has no gateway time).
 */
export class TrackRing {
  constructor(capacity = 64) {
    this.capacity = capacity;
    this.byFrame = new Map();
  }

  static key(frameId, captureTsUs) {
    return `${frameId}:${captureTsUs}`;
  }

  add(tracks) {
    const key = TrackRing.key(tracks.frame_id, tracks.capture_ts_us);
    this.byFrame.delete(key);
    this.byFrame.set(key, tracks);
    while (this.byFrame.size > this.capacity) this.byFrame.delete(this.byFrame.keys().next().value);
  }

  /** The tracks of the frame these detections belong to; undefined if none (yet). */
  of(detections) {
    return this.byFrame.get(TrackRing.key(detections.frame_id, detections.capture_ts_us));
  }
}

/**
 * The detections' objects with their track ids. The analytics keep a frame's objects in
 * the detections' order, so they pair by index (and must agree on the label); objects
 * without a partner keep no track id.
 */
export function withTracks(objects, tracks) {
  if (!tracks) return objects;
  return objects.map((o, i) => {
    const t = tracks.objects[i];
    return t && t.label === o.label ? { ...o, track_id: t.track_id } : o;
  });
}

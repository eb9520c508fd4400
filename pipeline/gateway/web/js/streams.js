/**
 * The stream list: GET /v1/streams polled, each stream classified for a person watching.
 * `classifyStream` is pure; `StreamDirectory` does the polling, with backoff when the
 * gateway is away.
 */
import { askForToken, withToken } from "./auth.js";
import { Backoff, Retrying } from "./backoff.js";

/** A stream with no frame, or no detections, for this long is flagged. */
export const STALE_AFTER_MS = 5000;

export const LIVE = "live";
export const STALE = "stale";
export const NO_DETECTIONS = "no detections";

/**
 * live: frames arrive and detections follow; stale: no frame for STALE_AFTER_MS (the camera
 * stopped); no detections: frames arrive but no detections came back lately (no worker, or
 * the workers are far behind). Times are the gateway's (µs), so the browser's clock is moot.
 */
export function classifyStream(stream, nowUs, staleAfterMs = STALE_AFTER_MS) {
  const staleUs = staleAfterMs * 1000;
  if (!stream.frame_ts_us || nowUs - stream.frame_ts_us > staleUs) return STALE;
  if (!stream.detections_ts_us || nowUs - stream.detections_ts_us > staleUs) return NO_DETECTIONS;
  return LIVE;
}

/** How many frames the detections trail the latest frame by; null when unknown. */
export function lagFrames(stream) {
  if (stream.frame_id < 0 || stream.detections_frame_id < 0) return null;
  return Math.max(0, stream.frame_id - stream.detections_frame_id);
}

/** Streams whose id contains `query` (case-insensitive), at most `limit` of them. */
export function matchStreams(streams, query, limit) {
  const needle = query.trim().toLowerCase();
  const found = needle ? streams.filter((s) => s.stream_id.toLowerCase().includes(needle)) : streams;
  return { shown: found.slice(0, limit), hidden: Math.max(0, found.length - limit) };
}

/**
 * Polls the stream list every `intervalMs`; when the gateway does not answer, retries with
 * backoff. Calls onUpdate({streams, nowUs, receivedAt}) and onState({status, retryInMs, attempt, error}).
 */
export class StreamDirectory extends Retrying {
  constructor(baseUrl, { intervalMs = 1000, clock, onUpdate, onState, backoff = new Backoff() }) {
    super(backoff);
    this.url = new URL("/v1/streams", baseUrl).href;
    this.intervalMs = intervalMs;
    this.clock = clock;
    this.onUpdate = onUpdate;
    this.onState = onState;
  }

  run() {
    this.poll();
  }

  /** Poll at once (after a reconnect elsewhere, say) instead of waiting out a delay. */
  now() {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.poll();
  }

  async poll() {
    const sentAt = Date.now();
    let delay;
    try {
      const response = await fetch(withToken(this.url), { cache: "no-store" });
      if (response.status === 401) askForToken("The gateway refused the token (expired or revoked?).");
      if (!response.ok) throw new Error(`GET /v1/streams answered ${response.status}`);
      const body = await response.json();
      const receivedAt = Date.now();
      if (this.clock && Number.isFinite(body.now_us)) {
        this.clock.update(body.now_us / 1000, sentAt, receivedAt);
      }
      this.backoff.reset();
      this.onState({ status: "open", attempt: 0, retryInMs: 0, error: null });
      this.onUpdate({ streams: body.streams, nowUs: body.now_us, receivedAt });
      delay = this.intervalMs;
    } catch (error) {
      delay = this.backoff.next();
      this.onState({
        status: "waiting",
        attempt: this.backoff.attempt,
        retryInMs: delay,
        error: String(error.message || error),
      });
    }
    if (this.running) this.runIn(delay);
  }
}

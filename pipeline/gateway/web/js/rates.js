/** Per-tile readouts: events per second over a sliding window, and a latency median. */

export class RateMeter {
  constructor(windowMs = 5000) {
    this.windowMs = windowMs;
    this.times = [];
  }

  tick(nowMs = performance.now()) {
    this.times.push(nowMs);
    this.trim(nowMs);
  }

  trim(nowMs) {
    const from = nowMs - this.windowMs;
    while (this.times.length && this.times[0] < from) this.times.shift();
  }

  /** Events per second over the window; 0 with fewer than two events in it. */
  rate(nowMs = performance.now()) {
    this.trim(nowMs);
    if (this.times.length < 2) return 0;
    const span = Math.max(nowMs - this.times[0], this.times[this.times.length - 1] - this.times[0]);
    return span > 0 ? ((this.times.length - 1) * 1000) / span : 0;
  }
}

export class LatencyWindow {
  constructor(size = 30) {
    this.size = size;
    this.values = [];
  }

  add(ms) {
    if (!Number.isFinite(ms)) return;
    this.values.push(ms);
    if (this.values.length > this.size) this.values.shift();
  }

  /** The p-th percentile (0-100) of the recent values, nearest rank; null when empty. */
  percentile(p) {
    if (!this.values.length) return null;
    const sorted = [...this.values].sort((a, b) => a - b);
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
  }
}

/**
 * Frames and detections per second of each stream, from the counters of GET /v1/streams:
 * the current list against the oldest earlier poll (`samples`, oldest first, each
 * {at: local ms, byId: Map(stream_id -> {frames, detections})}) that knew the stream.
 */
export function counterRates(samples, current, nowMs) {
  const rates = new Map();
  for (const stream of current) {
    for (const sample of samples) {
      const before = sample.byId.get(stream.stream_id);
      const elapsedMs = nowMs - sample.at;
      if (!before || elapsedMs <= 0) continue;
      const frames = stream.frames - before.frames;
      const detections = stream.detections - before.detections;
      if (frames >= 0 && detections >= 0) { // else the gateway restarted: counters began again
        rates.set(stream.stream_id, {
          framesPerS: (frames * 1000) / elapsedMs,
          detectionsPerS: (detections * 1000) / elapsedMs,
        });
      }
      break;
    }
  }
  return rates;
}

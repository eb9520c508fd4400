/**
 * The gateway's clock as seen from the browser. Latency readouts compare the gateway's
 * capture timestamps with "now"; the browser's own clock may be off by seconds, so "now"
 * is the local clock plus an offset measured on each GET /v1/streams (which carries the
 * gateway's `now_us`). The sample with the shortest round trip is the most precise
 * (error at most half of it), so the best of the recent samples wins.
 */
export class ClockOffset {
  constructor({ keep = 10 } = {}) {
    this.keep = keep;
    this.samples = [];
  }

  /** One request: sent and answered at local times (ms), the server's time (ms) in between. */
  update(serverMs, sentMs, receivedMs) {
    const rtt = Math.max(0, receivedMs - sentMs);
    this.samples.push({ rtt, offset: serverMs - (sentMs + receivedMs) / 2 });
    if (this.samples.length > this.keep) this.samples.shift();
  }

  get known() {
    return this.samples.length > 0;
  }

  /** Server time minus local time (ms); 0 until measured. */
  get offsetMs() {
    if (!this.samples.length) return 0;
    return this.samples.reduce((best, s) => (s.rtt < best.rtt ? s : best)).offset;
  }

  /** The gateway's "now" in ms since the epoch. */
  serverNowMs(localMs = Date.now()) {
    return localMs + this.offsetMs;
  }
}

/**
 * Reconnect delays: doubling from `initialMs` up to `maxMs`, each spread by ±`jitter` so
 * that many viewers do not hammer a restarted gateway in the same instant.
 */
export class Backoff {
  constructor({ initialMs = 500, maxMs = 10_000, factor = 2, jitter = 0.2, random = Math.random } = {}) {
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.factor = factor;
    this.jitter = jitter;
    this.random = random;
    this.attempt = 0;
  }

  /** The delay before the next attempt (and count the attempt). */
  next() {
    const base = Math.min(this.maxMs, this.initialMs * this.factor ** this.attempt);
    this.attempt += 1;
    const spread = 1 + (this.random() * 2 - 1) * this.jitter;
    return Math.round(Math.min(this.maxMs, base * spread));
  }

  /** A connection worked: the next failure starts from the shortest delay again. */
  reset() {
    this.attempt = 0;
  }
}

/**
 * Something that runs until stopped and, after a failure or between polls, runs again after
 * a delay: one timer, and nothing runs once stopped. Subclasses give `run()`.
 */
export class Retrying {
  constructor(backoff = new Backoff()) {
    this.backoff = backoff;
    this.timer = null;
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.run();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
  }

  /** Run again in `delayMs` (replacing any run already planned), unless stopped by then. */
  runIn(delayMs) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.running) this.run();
    }, delayMs);
  }
}

/**
 * A WebSocket that comes back by itself: when the gateway goes away (a restart, a network
 * blip) it retries with backoff and reports each step, so the page can say what is going on.
 * The backoff is reset only once the gateway has said hello: a gateway that accepts and then
 * drops the socket at once is still backed off. A close with 1008 (policy violation: a bad
 * stream id, say) is final: retrying would only fail the same way.
 */
import { Backoff, Retrying } from "./backoff.js";

export const CONNECTING = "connecting";
export const OPEN = "open";
export const WAITING = "waiting";
export const FAILED = "failed";
export const STOPPED = "stopped";

const POLICY_VIOLATION = 1008;

export class ReconnectingSocket extends Retrying {
  /**
   * @param {string} url ws:// or wss:// URL
   * @param {{onMessage?: (data: any) => void, onState?: (state: object) => void, backoff?: Backoff}} options
   */
  constructor(url, { onMessage = () => {}, onState = () => {}, backoff = new Backoff() } = {}) {
    super(backoff);
    this.url = url;
    this.onMessage = onMessage;
    this.onState = onState;
    this.ws = null;
    this.state = { status: STOPPED, attempt: 0, retryAt: 0, reason: "" };
  }

  run() {
    this.connect();
  }

  stop() {
    super.stop();
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close(1000, "viewer closed");
      this.ws = null;
    }
    this.setState({ status: STOPPED, attempt: 0, retryAt: 0, reason: "" });
  }

  /** Send if connected; false when the message could not be sent. */
  send(data) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(data);
    return true;
  }

  /** Bytes queued in the browser, not yet on the wire (0 when not connected). */
  get bufferedAmount() {
    return this.ws ? this.ws.bufferedAmount : 0;
  }

  get isOpen() {
    return this.state.status === OPEN;
  }

  setState(state) {
    this.state = state;
    this.onState(state);
  }

  connect() {
    this.setState({ status: CONNECTING, attempt: this.backoff.attempt, retryAt: 0, reason: "" });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (error) {
      this.fail(String(error.message || error));
      return;
    }
    this.ws = ws;
    ws.onmessage = (event) => {
      let message = event.data;
      if (typeof message === "string") {
        try {
          message = JSON.parse(message);
        } catch {
          return;
        }
        if (message.type === "hello") {
          this.backoff.reset();
          this.setState({ status: OPEN, attempt: 0, retryAt: 0, reason: "" });
        }
      }
      this.onMessage(message);
    };
    ws.onclose = (event) => {
      this.ws = null;
      if (!this.running) return;
      if (event.code === POLICY_VIOLATION) {
        this.running = false;
        this.setState({ status: FAILED, attempt: 0, retryAt: 0, reason: event.reason || "refused" });
        return;
      }
      this.retry(event.reason || (event.wasClean ? "closed by the gateway" : "connection lost"));
    };
  }

  fail(reason) {
    this.ws = null;
    this.retry(reason);
  }

  retry(reason) {
    const delay = this.backoff.next();
    this.setState({ status: WAITING, attempt: this.backoff.attempt, retryAt: Date.now() + delay, reason });
    this.runIn(delay);
  }
}

/** ws(s)://host for the page's own origin (the gateway serves the viewer). */
export function socketBase(location) {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
}

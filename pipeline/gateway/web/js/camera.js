/**
 * "Use my camera": the browser becomes a camera of the engine. getUserMedia's video is
 * drawn to a canvas at a capped rate, encoded as JPEG and sent as one binary message per
 * frame to WS /v1/ingest/{stream_id} (the gateway numbers such frames and stamps their time).
 *
 * Like a real camera it never queues: a frame is skipped (and counted) while the socket is
 * down, while the previous frame is still being encoded, or while more than MAX_BUFFERED
 * bytes wait in the browser for the network. The socket reconnects by itself.
 */
import { withToken } from "./auth.js";
import { ReconnectingSocket } from "./socket.js";

const MAX_BUFFERED = 1_000_000;
const MAX_WIDTH = 1280;

/** Why the camera cannot start here, or null when it can. */
export function cameraUnavailable(win = window) {
  if (!win.isSecureContext) {
    return "The browser gives the camera only to https:// pages and http://localhost: open the viewer that way.";
  }
  if (!win.navigator.mediaDevices || !win.navigator.mediaDevices.getUserMedia) {
    return "This browser has no camera access (getUserMedia).";
  }
  return null;
}

/** A user-facing sentence for getUserMedia's errors. */
export function explainCameraError(error) {
  switch (error && error.name) {
    case "NotAllowedError":
      return "Camera permission was refused: allow it in the browser's site settings.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera was found.";
    case "NotReadableError":
      return "The camera is busy in another application.";
    default:
      return `The camera could not start: ${error && error.message ? error.message : error}`;
  }
}

export class CameraPublisher {
  /**
   * @param {object} options
   * @param {string} options.wsBase the gateway's ws(s) origin
   * @param {HTMLVideoElement} options.video local preview
   * @param {(status: object) => void} options.onStatus
   */
  constructor({ wsBase, video, onStatus }) {
    this.wsBase = wsBase;
    this.video = video;
    this.onStatus = onStatus;
    this.canvas = document.createElement("canvas");
    this.media = null;
    this.socket = null;
    this.timer = null;
    this.encoding = false;
    this.reset();
  }

  reset() {
    this.stats = { sent: 0, bytes: 0, skipped: 0, connection: "stopped", error: "" };
  }

  get running() {
    return this.media !== null;
  }

  async start(streamId, fps, quality = 0.8) {
    const unavailable = cameraUnavailable();
    if (unavailable) throw new Error(unavailable);
    this.stop();
    this.reset();
    this.streamId = streamId;
    this.periodMs = 1000 / fps;
    this.quality = quality;
    try {
      this.media = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 1280 }, height: { ideal: 720 } },
        audio: false,
      });
    } catch (error) {
      this.media = null;
      throw new Error(explainCameraError(error));
    }
    for (const track of this.media.getVideoTracks()) {
      track.addEventListener("ended", () => {
        this.stats.error = "The camera stopped (unplugged or taken by another application).";
        this.stop();
      });
    }
    this.video.srcObject = this.media;
    this.video.hidden = false;
    await this.video.play();
    const url = withToken(`${this.wsBase}/v1/ingest/${encodeURIComponent(streamId)}`);
    this.socket = new ReconnectingSocket(url, {
      onMessage: (message) => this.reply(message),
      onState: (state) => {
        this.stats.connection = state.status;
        this.report();
      },
    });
    this.socket.start();
    this.schedule();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.socket) this.socket.stop();
    this.socket = null;
    if (this.media) for (const track of this.media.getTracks()) track.stop();
    this.media = null;
    this.video.srcObject = null;
    this.video.hidden = true;
    this.stats.connection = "stopped";
    this.report();
  }

  reply(message) {
    if (message.type === "error") {
      this.stats.error = `${message.code}: ${message.message}`;
      this.report();
    }
  }

  schedule() {
    if (!this.media) return;
    this.timer = setTimeout(() => {
      this.capture();
      this.schedule();
    }, this.periodMs);
  }

  capture() {
    const video = this.video;
    if (!this.socket || !this.socket.isOpen || this.encoding || !video.videoWidth) {
      this.stats.skipped += 1;
      return;
    }
    if (this.socket.bufferedAmount > MAX_BUFFERED) {
      this.stats.skipped += 1;
      return;
    }
    const scale = Math.min(1, MAX_WIDTH / video.videoWidth);
    const width = Math.round(video.videoWidth * scale);
    const height = Math.round(video.videoHeight * scale);
    if (this.canvas.width !== width) this.canvas.width = width;
    if (this.canvas.height !== height) this.canvas.height = height;
    this.canvas.getContext("2d").drawImage(video, 0, 0, width, height);
    this.encoding = true;
    this.canvas.toBlob(
      (blob) => {
        this.encoding = false;
        if (!blob || !this.socket) return;
        if (this.socket.send(blob)) {
          this.stats.sent += 1;
          this.stats.bytes += blob.size;
        } else {
          this.stats.skipped += 1;
        }
        this.report();
      },
      "image/jpeg",
      this.quality,
    );
  }

  report() {
    this.onStatus({ ...this.stats, streamId: this.streamId, running: this.running });
  }
}

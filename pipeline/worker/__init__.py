"""The inference worker: frames topic -> batched detection -> detections topic."""

"""The gateway: WebSocket ingest -> frames topic; detections topic -> WebSocket subscribers."""

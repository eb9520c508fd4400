"""Clients of the gateway: the Python API (ingest and subscribe) and the web viewer (web/)."""

from client.ingest import Ack, GatewayError, IngestClient
from client.subscribe import subscribe

__all__ = ["Ack", "GatewayError", "IngestClient", "subscribe"]

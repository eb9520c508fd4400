"""Clients of the gateway: the Python API (ingest and subscribe) and the web viewer (web/)."""

from client.ingest import Ack, GatewayError, IngestClient
from client.resending import ResendingClient, ResendStats
from client.subscribe import subscribe

__all__ = ["Ack", "GatewayError", "IngestClient", "ResendStats", "ResendingClient", "subscribe"]

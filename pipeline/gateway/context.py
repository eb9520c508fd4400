"""Everything a gateway connection handler needs, built once per process."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from pipeline.config import Settings
from pipeline.gateway.counts_board import CountsBoard
from pipeline.gateway.event_index import EventIndex
from pipeline.gateway.fanout import FanoutHub
from pipeline.gateway.frame_history import FrameHistory
from pipeline.gateway.limits import FrameRates
from pipeline.gateway.peers import Peers
from pipeline.gateway.streams import StreamRegistry
from pipeline.kafka.producer import AsyncProducer
from pipeline.metrics import GatewayMetrics
from pipeline.protocol.rules import RulesError, rules_document
from pipeline.serde import FrameRecord, RulesRecord
from pipeline.topics import TopicWriter


@dataclass
class Readiness:
    """Why the gateway is or is not ready; refreshed in the background."""

    ready: bool = False
    reason: str = "starting"


@dataclass
class RulesState:
    """The analytics rules in force (from the rules topic) and how to publish new ones."""

    writer: TopicWriter[RulesRecord] | None = None
    text: str = ""
    _json: tuple[str, str] = ("", "")  # (text, its JSON form): reshaped once per change

    def as_json(self) -> str:
        """The rules as JSON (``rules_document``, plus the YAML text); an error object
        when the topic holds a document this gateway cannot read."""
        if self._json[0] != self.text:
            try:
                body: dict[str, object] = {"yaml": self.text, **rules_document(self.text)}
            except RulesError as exc:
                body = {"yaml": self.text, "streams": [], "error": str(exc)}
            self._json = (self.text, json.dumps(body, separators=(",", ":")))
        return self._json[1]


@dataclass
class GatewayContext:
    """Shared state of one gateway process."""

    settings: Settings
    producer: AsyncProducer
    frames: TopicWriter[FrameRecord]
    metrics: GatewayMetrics
    hub: FanoutHub = field(default_factory=FanoutHub)
    analytics_hub: FanoutHub = field(default_factory=FanoutHub)  # WS /v1/events
    counts: CountsBoard = field(default_factory=CountsBoard)
    event_index: EventIndex = field(default_factory=lambda: EventIndex(0))
    rules: RulesState = field(default_factory=RulesState)
    streams: StreamRegistry = field(default_factory=lambda: StreamRegistry(10_000))
    history: FrameHistory = field(default_factory=lambda: FrameHistory(0, 0))
    readiness: Readiness = field(default_factory=Readiness)
    rates: FrameRates = field(default_factory=lambda: FrameRates(0))
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    # VAE_GATEWAY_PROCESSES > 1: this process's index and its siblings (None: alone).
    process: int = 0
    peers: Peers | None = None

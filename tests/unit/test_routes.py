"""Request paths to endpoints, with stream ids checked before any socket work."""

from __future__ import annotations

import pytest

from pipeline.protocol.routes import BadRequest, Http, Ingest, Subscribe, route
from pipeline.protocol.stream_ids import BadStreamId, check_stream_id


@pytest.mark.parametrize("good", ["cam-1", "a", "Lobby_2.north", "x" * 128])
def test_good_stream_ids(good: str) -> None:
    assert check_stream_id(good) == good


@pytest.mark.parametrize("bad", ["", "x" * 129, "has space", "slash/inside", "ünï", "a,b", "*"])
def test_bad_stream_ids(bad: str) -> None:
    with pytest.raises(BadStreamId):
        check_stream_id(bad)


def test_ingest_routes() -> None:
    assert route("/v1/ingest/cam-1") == Ingest("cam-1", ack=False)
    assert route("/v1/ingest/cam-1?ack=1") == Ingest("cam-1", ack=True)
    assert route("/v1/ingest/cam-1?ack=true") == Ingest("cam-1", ack=True)
    assert route("/v1/ingest/cam%2D1") == Ingest("cam-1", ack=False)
    assert route("/v1/ingest/cam-1?ack=1&ordered=1") == Ingest("cam-1", ack=True, ordered=True)
    bad = route("/v1/ingest/bad%20id")
    assert isinstance(bad, BadRequest) and bad.websocket and "bad stream_id" in bad.message
    assert isinstance(route("/v1/ingest/"), BadRequest)


def test_subscribe_routes() -> None:
    assert route("/v1/subscribe") == Subscribe(None)
    assert route("/v1/subscribe?streams=*") == Subscribe(None)
    assert route("/v1/subscribe?streams=a,b") == Subscribe(frozenset({"a", "b"}))
    assert route("/v1/subscribe?streams=a&streams=b") == Subscribe(frozenset({"a", "b"}))
    assert route("/v1/subscribe?streams=a,*") == Subscribe(None)
    assert isinstance(route("/v1/subscribe?streams=a,b%20c"), BadRequest)


def test_http_routes() -> None:
    assert route("/healthz") == Http("healthz")
    assert route("/readyz") == Http("readyz")
    assert route("/metrics") == Http("metrics")
    assert route("/v1/streams") == Http("streams")
    assert route("/v1/streams/cam-1/latest.jpg") == Http("latest", stream_id="cam-1")
    assert isinstance(route("/v1/streams/a%20b/latest.jpg"), BadRequest)
    assert route("/") == Http("static", file="/")
    assert route("/app.js?v=2") == Http("static", file="/app.js")

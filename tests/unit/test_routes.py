"""Request paths to endpoints, with stream ids checked before any socket work."""

from __future__ import annotations

import pytest

from pipeline.protocol.routes import BadRequest, EventMedia, Events, Http, Ingest, Subscribe, route
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


def test_event_media_routes() -> None:
    uuid = "0c7a7b3e-3c1f-5d8e-9a59-0e3c5e0b7a11"
    assert route(f"/v1/events/{uuid}/snapshot.jpg") == EventMedia(uuid, "snapshot", True, False)
    assert route(f"/v1/events/{uuid}/snapshot.jpg?boxes=0") == EventMedia(
        uuid, "snapshot", False, False
    )
    assert route(f"/v1/events/{uuid}/snapshot.jpg?crop=1&token=t") == EventMedia(
        uuid, "snapshot", True, True
    )
    assert route(f"/v1/events/{uuid}/snapshot.jpg?crop=true&boxes=no") == EventMedia(
        uuid, "snapshot", False, True
    )
    assert route(f"/v1/events/{uuid}/clip.mp4?token=t") == EventMedia(uuid, "clip")
    assert route("/v1/events/a.b_c:d-1/clip.mp4") == EventMedia("a.b_c:d-1", "clip")
    assert route("/v1/events/cam%2D1/clip.mp4") == EventMedia("cam-1", "clip")
    # The events socket keeps its exact path.
    assert route("/v1/events?streams=a") == Events(frozenset({"a"}))


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/v1/events/e1/snapshot.png", "bad event media path"),
        ("/v1/events/e1/clip.webm", "bad event media path"),
        ("/v1/events/e1", "bad event media path"),
        ("/v1/events/", "bad event media path"),
        ("/v1/events//clip.mp4", "bad event media path"),
        ("/v1/events/e%201/clip.mp4", "bad event media path"),
        ("/v1/events/e/1/clip.mp4", "bad event media path"),
        ("/v1/events/" + "x" * 129 + "/clip.mp4", "bad event media path"),
        ("/v1/events/e1/snapshot.jpg?boxes=maybe", "boxes='maybe'"),
        ("/v1/events/e1/snapshot.jpg?crop=2", "crop='2'"),
        ("/v1/events/e1/clip.mp4?crop=1", "takes no boxes or crop"),
    ],
)
def test_bad_event_media_paths_say_what_to_use(path: str, says: str) -> None:
    bad = route(path)
    assert isinstance(bad, BadRequest) and bad.status == 400 and not bad.websocket
    assert says in bad.message

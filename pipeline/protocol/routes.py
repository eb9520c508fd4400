"""Which endpoint a request path names, with its parameters validated (no sockets here)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from pipeline.protocol.stream_ids import BadStreamId, check_stream_id

INGEST_PREFIX = "/v1/ingest/"
SUBSCRIBE_PATH = "/v1/subscribe"
EVENTS_PATH = "/v1/events"
RULES_PATH = "/v1/rules"
STREAMS_PATH = "/v1/streams"
FRAMES_INFIX = "/frames/"
FRAME_PATH_RULE = "/v1/streams/{stream_id}/frames/{frame_id}.jpg with a frame_id of 0 or more"
EVENT_MEDIA = {"snapshot.jpg": "snapshot", "clip.mp4": "clip"}
EVENT_MEDIA_RULE = (
    "/v1/events/{event_id}/snapshot.jpg[?boxes=0][&crop=1] or /v1/events/{event_id}/clip.mp4, "
    "with an event_id of 1-128 characters from A-Z a-z 0-9 . _ : -"
)
_EVENT_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")


@dataclass(frozen=True, slots=True)
class Ingest:
    """WS /v1/ingest/{stream_id}[?ack=1][&ordered=1].

    ``ordered``: a refusal that may pass (`overloaded`, `rate_limited`) closes the socket
    (1013), so that no later frame of the stream is taken before the refused one is sent
    again: a resending client keeps its stream's order.
    """

    stream_id: str
    ack: bool
    ordered: bool = False


@dataclass(frozen=True, slots=True)
class Subscribe:
    """WS /v1/subscribe?streams=a,b (or * for every stream). ``streams`` None = all."""

    streams: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class Events:
    """WS /v1/events?streams=a,b (or *): analytics events and count updates of those streams."""

    streams: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class RulesEdit:
    """/v1/rules[?format=json]: GET the analytics rules in force (YAML, or JSON for clients
    without a YAML parser); over a WebSocket, save new ones."""

    json: bool = False


@dataclass(frozen=True, slots=True)
class Http:
    """A plain HTTP GET: health, metrics, stream list, latest frame, static files."""

    name: str  # healthz | readyz | metrics | streams | latest | frame | counts | static
    stream_id: str | None = None
    file: str | None = None
    frame_id: int | None = None


@dataclass(frozen=True, slots=True)
class EventMedia:
    """GET /v1/events/{event_id}/snapshot.jpg or clip.mp4: an event's frame or clip, read
    back from the frames topic. Its stream is known only once the id is looked up."""

    event_id: str
    kind: str  # snapshot | clip
    boxes: bool = True  # snapshot: draw the event's box and label
    crop: bool = False  # snapshot: only the box, with a small margin


@dataclass(frozen=True, slots=True)
class BadRequest:
    """A path that names an endpoint with an unusable parameter."""

    status: int
    message: str
    websocket: bool


Route = Ingest | Subscribe | Events | RulesEdit | Http | EventMedia | BadRequest

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


def route(path: str) -> Route:
    """Map a request target (path and query) to an endpoint."""
    parts = urlsplit(path)
    query = parse_qs(parts.query)
    target = parts.path
    if target.startswith(INGEST_PREFIX):
        raw_id = unquote(target[len(INGEST_PREFIX) :])
        try:
            stream_id = check_stream_id(raw_id)
        except BadStreamId as exc:
            return BadRequest(400, str(exc), websocket=True)
        ack = query.get("ack", ["0"])[-1].lower() in _TRUE
        ordered = query.get("ordered", ["0"])[-1].lower() in _TRUE
        return Ingest(stream_id, ack, ordered)
    if target == SUBSCRIBE_PATH:
        return _subscribe(query)
    if target == RULES_PATH:
        return RulesEdit(json=query.get("format", [""])[-1].lower() == "json")
    if target == EVENTS_PATH:
        chosen = _subscribe(query)
        return Events(chosen.streams) if isinstance(chosen, Subscribe) else chosen
    if target.startswith(EVENTS_PATH + "/"):
        return _event_media(target, query)
    if target in ("/healthz", "/readyz", "/metrics"):
        return Http(target[1:])
    if target == STREAMS_PATH:
        return Http("streams")
    for suffix, kind in (("/latest.jpg", "latest"), ("/counts", "counts")):
        if target.startswith(STREAMS_PATH + "/") and target.endswith(suffix):
            return _of_stream(kind, target[len(STREAMS_PATH) + 1 : -len(suffix)])
    if target.startswith(STREAMS_PATH + "/") and FRAMES_INFIX in target:
        return _frame(target)
    return Http("static", file=target)


def _of_stream(kind: str, raw_id: str, frame_id: int | None = None) -> Route:
    """An HTTP route about one stream (its id as it stands in the path, checked)."""
    try:
        return Http(kind, stream_id=check_stream_id(unquote(raw_id)), frame_id=frame_id)
    except BadStreamId as exc:
        return BadRequest(400, str(exc), websocket=False)


def _frame(target: str) -> Route:
    """GET /v1/streams/{stream_id}/frames/{frame_id}.jpg: one recent frame, by id."""
    raw_id, _, name = target[len(STREAMS_PATH) + 1 :].partition(FRAMES_INFIX)
    number = name.removesuffix(".jpg")
    digits = number.isascii() and number.isdigit() and len(number) <= 19
    if not name.endswith(".jpg") or not digits:
        return BadRequest(400, f"bad frame path {target!r}: use {FRAME_PATH_RULE}", False)
    return _of_stream("frame", raw_id, frame_id=int(number))


def _event_media(target: str, query: dict[str, list[str]]) -> Route:
    """GET /v1/events/{event_id}/snapshot.jpg or clip.mp4."""
    raw_id, _, name = target[len(EVENTS_PATH) + 1 :].partition("/")
    event_id = unquote(raw_id)
    kind = EVENT_MEDIA.get(name)
    valid_id = 0 < len(event_id) <= 128 and set(event_id) <= _EVENT_ID_CHARS
    if kind is None or not valid_id:
        return BadRequest(400, f"bad event media path {target!r}: use {EVENT_MEDIA_RULE}", False)
    flags = {}
    for flag, default in (("boxes", True), ("crop", False)):
        value = query.get(flag, ["1" if default else "0"])[-1].lower()
        if value not in _TRUE | _FALSE:
            return BadRequest(400, f"{flag}={value!r}: use {flag}=1 or {flag}=0", False)
        flags[flag] = value in _TRUE
    if kind == "clip" and ("boxes" in query or "crop" in query):
        return BadRequest(400, "clip.mp4 takes no boxes or crop (the snapshot does)", False)
    return EventMedia(event_id, kind, boxes=flags["boxes"], crop=flags["crop"])


def _subscribe(query: dict[str, list[str]]) -> Route:
    raw = ",".join(query.get("streams", ["*"]))
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if not names or "*" in names:
        return Subscribe(None)
    try:
        return Subscribe(frozenset(check_stream_id(name) for name in names))
    except BadStreamId as exc:
        return BadRequest(400, str(exc), websocket=True)

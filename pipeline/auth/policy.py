"""Which grant each endpoint needs, decided from the parsed route alone.

Open: /healthz, /readyz and the viewer's static files (they hold no data). Everything else
needs a token: ``ingest:`` for the stream sent, ``subscribe:`` for each stream named on the
subscribe and events sockets (a ``*`` subscription is filtered to the streams the token may
see), ``subscribe:`` for a stream's frames and counts, ``admin`` for the rules (reading and
saving them), ``metrics`` for /metrics; an endpoint not named here needs ``admin``. No token
or a bad one: 401; a good token without the scope: 403.

An event's snapshot and clip show its stream, which is known only once the event id is
looked up: the door lets in a token that may watch some stream, and the handler then asks
``may_see_event``; an event of a stream the token may not watch is answered exactly as an
unknown id (404), so a token learns nothing of other streams' events, not even that they
exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from pipeline.auth.scopes import Grant
from pipeline.auth.tokens import AuthError, Verifier
from pipeline.protocol.routes import (
    BadRequest,
    EventMedia,
    Events,
    Http,
    Ingest,
    Route,
    RulesEdit,
    Subscribe,
)

OPEN_HTTP = frozenset({"healthz", "readyz", "static"})


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a request is turned away: an HTTP status and the counter's reason."""

    status: int  # 401 (no usable token) or 403 (not allowed)
    reason: str  # missing | malformed | expired | forged | invalid | scope
    message: str


def token_of(authorization: str | None, path: str) -> str | None:
    """The token of a request: ``Authorization: Bearer <t>``, else ``?token=<t>``."""
    if authorization:
        kind, _, value = authorization.strip().partition(" ")
        if kind.lower() == "bearer" and value.strip():
            return value.strip()
    values = parse_qs(urlsplit(path).query).get("token")
    return values[-1] if values else None


def needs_token(target: Route) -> bool:
    if isinstance(target, BadRequest):
        return False  # refused anyway, and says why
    if isinstance(target, Http):
        return target.name not in OPEN_HTTP
    return True


def allows(grant: Grant, target: Route) -> bool:
    """Whether ``grant`` may use ``target``."""
    if isinstance(target, Ingest):
        return grant.may_ingest(target.stream_id)
    if isinstance(target, Subscribe | Events):  # detections, or events and counts
        if target.streams is None:  # filtered to what the grant may see
            return grant.may_subscribe_some()
        return all(grant.may_subscribe(s) for s in target.streams)
    if isinstance(target, RulesEdit):  # changes what every analytics worker counts
        return grant.admin
    if isinstance(target, EventMedia):  # the stream is checked after the lookup
        return grant.may_subscribe_some()
    if isinstance(target, Http):
        if target.name in OPEN_HTTP:
            return True
        if target.name == "metrics":
            return grant.metrics
        if target.name == "streams":  # the listing is filtered to what the grant may see
            return True
        if target.stream_id is not None:  # latest, frame
            return grant.may_subscribe(target.stream_id)
        return grant.admin
    return grant.admin  # an endpoint this policy does not know: admins only


def may_see_event(grant: Grant, stream_id: str) -> bool:
    """Whether ``grant`` may see the snapshot and clip of an event of ``stream_id``."""
    return grant.may_subscribe(stream_id)


def decide(verifier: Verifier | None, target: Route, token: str | None) -> Grant | Refused:
    """The grant a request acts under, or why it is refused. ``verifier`` None = auth off."""
    if verifier is None:
        return Grant.of(["ingest:*", "subscribe:*", "metrics", "admin"], "anonymous")
    if not needs_token(target):
        return Grant.of([], "anonymous")
    try:
        grant = verifier.verify(token)
    except AuthError as exc:
        return Refused(401, exc.reason, str(exc))
    if not allows(grant, target):
        return Refused(403, "scope", "the token does not grant this")
    return grant

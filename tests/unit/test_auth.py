"""Tokens and scopes (pipeline.auth): what verifies, what is refused and why, and which
endpoint each scope opens. Real keys, real signatures: nothing here is mocked."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pipeline.auth.policy import Refused, decide, may_see_event, token_of
from pipeline.auth.scopes import BadScope, Grant, check_scope
from pipeline.auth.tokens import MAX_TOKEN_CHARS, AuthError, Verifier, issue, parse_ttl
from pipeline.protocol.routes import route

SECRET = "s3cret-for-tests-only-0123456789abcdef"


def reason(verifier: Verifier, token: str | None) -> str:
    with pytest.raises(AuthError) as refused:
        verifier.verify(token)
    return refused.value.reason


def test_an_issued_token_verifies_with_its_scopes_and_subject() -> None:
    token = issue(SECRET, ["ingest:cam-*", "subscribe:*"], 3600, subject="door-cam")
    grant = Verifier(secret=SECRET).verify(token)
    assert grant == Grant.of(["ingest:cam-*", "subscribe:*"], "door-cam")


def test_expired_forged_malformed_and_missing_tokens_are_refused_with_their_reason() -> None:
    verifier = Verifier(secret=SECRET)
    expired = issue(SECRET, ["subscribe:*"], 60, now=time.time() - 3600)
    assert reason(verifier, expired) == "expired"
    assert reason(verifier, issue("another-secret-0123456789abcdefghij", ["admin"], 60)) == "forged"
    head, body, sig = issue(SECRET, ["subscribe:cam-1"], 60).split(".")
    claims = json.loads(jwt.utils.base64url_decode(body))
    claims["scope"] = "subscribe:*"  # a widened scope under the old signature
    widened = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    assert reason(verifier, f"{head}.{widened}.{sig}") == "forged"
    for garbage in ("", None, "abc", "a.b.c", "x" * (MAX_TOKEN_CHARS + 1), "é.é.é"):
        assert reason(verifier, garbage) in ("missing", "malformed")
    assert reason(verifier, None) == "missing"


def test_alg_none_and_a_token_without_expiry_are_refused() -> None:
    unsigned = jwt.encode({"scope": "admin", "exp": time.time() + 60}, None, algorithm="none")
    assert reason(Verifier(secret=SECRET), unsigned) == "forged"
    forever = jwt.encode({"scope": "admin"}, SECRET, algorithm="HS256")
    assert reason(Verifier(secret=SECRET), forever) == "invalid"


def test_a_public_key_verifies_an_identity_providers_rs256_and_es256_tokens() -> None:
    for key in (rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP256R1())):
        alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        claims = {"scope": "openid subscribe:lobby", "exp": time.time() + 60, "iss": "kc"}
        token = jwt.encode(claims, key, algorithm=alg)
        verifier = Verifier(public_key=pem.decode(), issuer="kc")
        assert verifier.verify(token).may_subscribe("lobby")
        assert reason(Verifier(public_key=pem.decode(), issuer="other"), token) == "invalid"
        # An HS256 token signed with the public key as its secret (alg confusion): refused.
        confused = jwt.encode(claims, SECRET, algorithm="HS256")
        assert reason(verifier, confused) == "forged"


def test_a_jwks_document_verifies_by_key_id_and_scp_lists_are_read() -> None:
    key = rsa.generate_private_key(65537, 2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})
    claims = {"scp": ["ingest:cam-1"], "exp": time.time() + 60, "aud": "vae"}
    good = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    verifier = Verifier(jwks=jwks, audience="vae")
    assert verifier.verify(good).may_ingest("cam-1")
    unknown = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k2"})
    assert reason(verifier, unknown) == "forged"
    other = rsa.generate_private_key(65537, 2048)
    assert reason(verifier, jwt.encode(claims, other, "RS256", headers={"kid": "k1"})) == "forged"


def test_globs_match_whole_stream_ids_so_cam_1_never_yields_cam_2() -> None:
    one = Grant.of(["subscribe:cam-1", "ingest:lobby-?"])
    assert one.may_subscribe("cam-1")
    for other in ("cam-2", "cam-10", "cam-1x", "xcam-1", "CAM-1"):
        assert not one.may_subscribe(other)
    assert not one.may_ingest("cam-1")  # subscribe never implies ingest
    assert one.may_ingest("lobby-a") and not one.may_ingest("lobby-ab")
    cams = Grant.of(["subscribe:cam-*"])
    assert cams.may_subscribe("cam-2") and not cams.may_subscribe("dock-1")
    assert not cams.may_subscribe_all() and Grant.of(["subscribe:*"]).may_subscribe_all()
    assert not Grant.of(["subscribe:"]).may_subscribe_some()


def test_scopes_outside_the_rule_cannot_be_issued() -> None:
    for good in ("ingest:cam-*", "subscribe:*", "metrics", "admin"):
        assert check_scope(good) == good
    for bad in ("ingest", "ingest:", "subscribe:a b", "admin:x", "root", ""):
        with pytest.raises(BadScope):
            check_scope(bad)
    with pytest.raises(BadScope):
        issue(SECRET, ["everything"], 60)


def test_ttls_read_as_a_person_writes_them() -> None:
    assert parse_ttl("24h") == 86400 and parse_ttl("15m") == 900 and parse_ttl("30") == 30
    assert parse_ttl("2d") == 172800
    for bad in ("", "h", "-1h", "0", "soon"):
        with pytest.raises(ValueError):
            parse_ttl(bad)


def test_the_token_comes_from_a_bearer_header_else_the_query() -> None:
    assert token_of("Bearer abc", "/v1/streams?token=xyz") == "abc"
    assert token_of("bearer  abc ", "/") == "abc"
    assert token_of(None, "/v1/subscribe?streams=*&token=xyz") == "xyz"
    assert token_of("Basic dXNlcg==", "/") is None
    assert token_of(None, "/v1/streams") is None


TOKEN_CAM_1 = issue(SECRET, ["ingest:cam-1", "subscribe:cam-1"], 86400)


@pytest.mark.parametrize(
    ("path", "token", "answer"),
    [
        ("/healthz", None, "open"),
        ("/readyz", None, "open"),
        ("/index.html", None, "open"),
        ("/js/viewer.js", None, "open"),
        ("/metrics", None, 401),
        ("/metrics", TOKEN_CAM_1, 403),
        ("/metrics", issue(SECRET, ["metrics"], 86400), "granted"),
        ("/v1/streams", None, 401),
        ("/v1/streams", TOKEN_CAM_1, "granted"),  # listed: only what it may see
        ("/v1/streams/cam-1/latest.jpg", TOKEN_CAM_1, "granted"),
        ("/v1/streams/cam-2/latest.jpg", TOKEN_CAM_1, 403),
        ("/v1/streams/cam-1/frames/3.jpg", TOKEN_CAM_1, "granted"),
        ("/v1/streams/cam-2/frames/3.jpg", TOKEN_CAM_1, 403),
        ("/v1/ingest/cam-1", TOKEN_CAM_1, "granted"),
        ("/v1/ingest/cam-2", TOKEN_CAM_1, 403),
        ("/v1/ingest/cam-1", issue(SECRET, ["subscribe:*"], 86400), 403),
        ("/v1/subscribe?streams=cam-1", TOKEN_CAM_1, "granted"),
        ("/v1/subscribe?streams=cam-1,cam-2", TOKEN_CAM_1, 403),
        ("/v1/subscribe?streams=*", TOKEN_CAM_1, "granted"),  # filtered to cam-1
        ("/v1/subscribe?streams=*", issue(SECRET, ["ingest:*"], 86400), 403),
        ("/v1/subscribe?streams=*", "not-a-token", 401),
        # An event's media: the door lets in a token that may watch some stream; its stream
        # is checked once the id is looked up (test_event_media_scope_is_checked_after_lookup).
        ("/v1/events/e-1/snapshot.jpg", None, 401),
        ("/v1/events/e-1/snapshot.jpg", "not-a-token", 401),
        ("/v1/events/e-1/snapshot.jpg", TOKEN_CAM_1, "granted"),
        ("/v1/events/e-1/clip.mp4", TOKEN_CAM_1, "granted"),
        ("/v1/events/e-1/clip.mp4", issue(SECRET, ["ingest:*", "metrics"], 86400), 403),
    ],
)
def test_each_endpoint_needs_its_scope(path: str, token: str | None, answer: object) -> None:
    decision = decide(Verifier(secret=SECRET), route(path), token)
    if answer == "open":
        assert isinstance(decision, Grant) and not decision.scopes
    elif answer == "granted":
        assert isinstance(decision, Grant) and decision.scopes
    else:
        assert isinstance(decision, Refused) and decision.status == answer


def test_event_media_scope_is_checked_after_lookup() -> None:
    """cam-1's token sees cam-1's events and, of cam-2's, nothing: the handler answers those
    exactly as an unknown id."""
    grant = Verifier(secret=SECRET).verify(TOKEN_CAM_1)
    assert may_see_event(grant, "cam-1")
    assert not may_see_event(grant, "cam-2")
    assert not may_see_event(grant, "cam-10")
    assert may_see_event(Grant.of(["subscribe:cam-*"]), "cam-10")


def test_auth_off_grants_everything() -> None:
    decision = decide(None, route("/v1/ingest/cam-9"), None)
    assert isinstance(decision, Grant) and decision.may_ingest("cam-9") and decision.metrics

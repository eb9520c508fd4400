"""Fuzzing targets, one per parser of untrusted input: routes and query strings, tokens and
the Authorization header, scopes, ingest messages (envelopes and adversarial JPEGs, at the
gateway), JPEG decoding and Avro records (again at the worker: the frames topic may be
written by others). Each may answer only with its result or its documented refusal; any
other exception is a crash. Inputs that once broke something stay as @example regressions.
"""

from __future__ import annotations

import contextlib
import struct
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pipeline.auth.policy import decide, token_of
from pipeline.auth.scopes import BadScope, Grant, check_scope
from pipeline.auth.tokens import AuthError, Verifier, issue
from pipeline.config import TopicSettings
from pipeline.inference.preprocess.cpu import UndecodableImage, decode_jpeg_bgr
from pipeline.protocol.envelope import (
    MAX_FRAME_PIXELS,
    IngestError,
    build_envelope,
    parse_ingest_message,
)
from pipeline.protocol.routes import BadRequest, Http, Ingest, Subscribe, route
from pipeline.serde import LocalSchemaIds, SerdeError, frame_record
from pipeline.topics import engine_topics

SECRET = "fuzzing-secret-that-is-long-enough-0123456789"
VERIFIER = Verifier(secret=SECRET)
GOOD = issue(SECRET, ["subscribe:cam-1"], 3600)


def _dog() -> bytes:
    from connectors import samples

    return samples.locate("dog.jpg").read_bytes()


DOG = _dog()


def _with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The same JPEG claiming another size in its SOF0/SOF2 header (a decompression bomb)."""
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = jpeg.find(marker)
        if at >= 0:
            return jpeg[: at + 5] + struct.pack(">HH", height, width) + jpeg[at + 9 :]
    raise AssertionError("no SOF marker")


BOMB = _with_size(DOG, 60000, 60000)  # a 160 KiB file that would decode to 10 GiB


@st.composite
def mutated_jpegs(draw: st.DrawFn) -> bytes:
    """dog.jpg with a few bytes changed, cut or repeated: mostly-valid adversarial JPEGs."""
    data = bytearray(DOG)
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["set", "cut", "dup"]))
        if kind == "set":
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 4096))]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 512))]
        if not data:
            break
    return bytes(data)


@given(st.text(max_size=300))
@example("/v1/ingest/%00")
@example("/v1/subscribe?streams=" + "a," * 5000)
@example("/v1/streams/%ZZ/latest.jpg")
@example("/v1/streams/cam/frames/" + "9" * 40 + ".jpg")
def test_route_maps_any_path_to_an_endpoint(path: str) -> None:
    assert isinstance(route(path), Ingest | Subscribe | Http | BadRequest)


@given(st.one_of(st.none(), st.text(max_size=200)), st.text(max_size=300))
def test_any_token_and_path_get_a_grant_or_a_refusal(authorization: str | None, path: str) -> None:
    token = token_of(authorization, path)
    assert decide(VERIFIER, route(path), token) is not None


@given(st.one_of(st.text(max_size=400), st.binary(max_size=400).map(lambda b: b.hex())))
@example("eyJhbGciOiJub25lIn0.eyJzY29wZSI6ImFkbWluIn0.")
@example("a.b")
@example("." * 10)
def test_a_token_verifies_or_is_refused(token: str) -> None:
    try:
        assert isinstance(VERIFIER.verify(token), Grant)
    except AuthError as exc:
        assert exc.reason in {"missing", "malformed", "expired", "forged", "invalid"}


@given(st.integers(0, len(GOOD) - 1), st.characters(codec="ascii"))
def test_no_change_to_a_good_token_keeps_it_valid_with_more(at: int, char: str) -> None:
    changed = GOOD[:at] + char + GOOD[at + 1 :]
    try:
        grant = VERIFIER.verify(changed)
    except AuthError:
        return
    # Base64 padding bits can change without changing the bytes: then it is the same token.
    assert grant.scopes == frozenset({"subscribe:cam-1"})


@given(st.text(max_size=100))
def test_a_scope_is_checked_or_refused(scope: str) -> None:
    with contextlib.suppress(BadScope):
        assert check_scope(scope) == scope


@given(st.one_of(mutated_jpegs(), st.binary(max_size=2048)), st.booleans())
@example(BOMB, False)
@example(BOMB, True)
@example(b"VAE\x01", True)
@example(b"\xff\xd8\xff\xd9", False)
def test_an_ingest_message_is_a_frame_or_a_refusal(payload: bytes, envelope: bool) -> None:
    message = build_envelope(1, 2, payload) if envelope else payload
    try:
        frame = parse_ingest_message(message, 2_097_152)
    except IngestError as exc:
        assert exc.code
        return
    assert 0 < frame.width * frame.height <= MAX_FRAME_PIXELS


@given(mutated_jpegs())
@example(BOMB)
def test_the_worker_decodes_a_jpeg_or_refuses_it_without_a_bomb(jpeg: bytes) -> None:
    started = time.monotonic()
    try:
        image = decode_jpeg_bgr(jpeg)
    except UndecodableImage:
        return
    finally:
        assert time.monotonic() - started < 5
    assert image.ndim == 3 and image.shape[0] * image.shape[1] <= MAX_FRAME_PIXELS


TOPICS = engine_topics(TopicSettings())
IDS = LocalSchemaIds()
FRAMES = TOPICS.frames.reader(IDS)
DETECTIONS = TOPICS.detections.reader(IDS)
GOOD_FRAME = TOPICS.frames.writer(IDS).value(
    frame_record(
        stream_id="cam-1", frame_id=1, capture_ts_us=1, gateway_ts_us=2,
        width=768, height=576, image=DOG[:64],
    )
)  # fmt: skip


@st.composite
def avro_records(draw: st.DrawFn) -> bytes:
    """A real frame record with bytes changed or cut, or anything after a real header."""
    data = bytearray(GOOD_FRAME)
    if draw(st.booleans()):
        return bytes(data[:5]) + draw(st.binary(max_size=300))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@pytest.mark.parametrize("decoder", [FRAMES, DETECTIONS], ids=["frames", "detections"])
@given(record=st.one_of(avro_records(), st.binary(max_size=200)))
@example(record=GOOD_FRAME[:5] + b"+")  # a frame's schema id on the detections topic: crashed
@example(record=GOOD_FRAME)
def test_an_avro_record_decodes_or_is_refused(decoder: object, record: bytes) -> None:
    with contextlib.suppress(SerdeError):
        decoder.decode(record)  # type: ignore[attr-defined]


def test_a_decompression_bomb_is_refused_at_the_gateway_and_at_the_worker() -> None:
    with pytest.raises(IngestError) as refused:
        parse_ingest_message(BOMB, 2_097_152)
    assert refused.value.code == "image_too_large"
    with pytest.raises(UndecodableImage, match="60000x60000"):
        decode_jpeg_bgr(BOMB)

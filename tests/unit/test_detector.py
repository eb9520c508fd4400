"""The real model on the real media, against the reference detections in MODELS.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from pipeline import config
from pipeline.inference.backends import create_backend
from pipeline.inference.backends.onnx_graph import batch_is_dynamic, make_batch_dynamic
from pipeline.inference.detector import Detector
from pipeline.inference.labels import COCO_CLASSES
from pipeline.inference.model_files import locate
from pipeline.protocol.messages import detections as to_json
from pipeline.serde import detected_objects, stage_timings
from tests import reference
from tests.sample_clip import sample_jpeg


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(create_backend(config.load().model, max_batch=8))


def as_objects(detector: Detector, jpeg: bytes) -> list[dict[str, Any]]:
    found = detector.detect([jpeg])[0]
    assert found is not None
    return [
        {"label": o["label"], "score": o["score"], "box": (o["x1"], o["y1"], o["x2"], o["y2"])}
        for o in detected_objects(found, COCO_CLASSES)
    ]


def test_dog_jpg_matches_the_reference(detector: Detector, dog_jpeg: bytes) -> None:
    reference.assert_matches_reference(as_objects(detector, dog_jpeg))


def test_vtest_frame_300_matches_the_reference(detector: Detector, media: Path) -> None:
    objects = as_objects(detector, sample_jpeg(media, 300))
    persons = [o for o in objects if o["label"] == "person" and 0.70 <= float(o["score"]) <= 0.85]
    assert len(persons) == reference.VTEST_300_PERSONS
    _, score, box = reference.VTEST_300_PERSON
    best = max(persons, key=lambda o: reference.iou(o["box"], box))
    assert reference.iou(best["box"], box) > 0.95
    assert abs(float(best["score"]) - score) < 0.02
    trucks = [float(o["score"]) for o in objects if o["label"] == "truck"]
    cars = [float(o["score"]) for o in objects if o["label"] == "car"]
    assert any(abs(s - reference.VTEST_300_TRUCK_SCORE) < 0.02 for s in trucks)
    assert any(abs(s - reference.VTEST_300_CAR_SCORE) < 0.02 for s in cars)


def test_batch_of_mixed_images_equals_one_by_one(
    detector: Detector, dog_jpeg: bytes, media: Path
) -> None:
    frames = [dog_jpeg, sample_jpeg(media, 100), dog_jpeg, sample_jpeg(media, 500)]
    batched = detector.detect(frames)
    for frame, together in zip(frames, batched, strict=True):
        alone = detector.detect([frame])[0]
        assert together is not None and alone is not None
        assert together.class_id.tolist() == alone.class_id.tolist()
        assert np.allclose(together.xyxy, alone.xyxy, atol=1e-3)
        assert np.allclose(together.confidence, alone.confidence, atol=1e-5)


def test_undecodable_frame_is_reported_without_failing_the_batch(
    detector: Detector, dog_jpeg: bytes
) -> None:
    results = detector.detect([dog_jpeg, b"\xff\xd8\xff\xe0broken\xff\xd9", dog_jpeg])
    assert results[1] is None
    assert results[0] is not None and results[2] is not None and len(results[0]) == 4


def test_dynamic_batch_gives_identical_outputs() -> None:
    """MODELS.md's recipe: batch-8 run equals eight batch-1 runs of the shipped graph."""
    path = locate("yolox_nano", config.load().model.dir)
    original = onnx.load(str(path))
    assert not batch_is_dynamic(original)
    patched = make_batch_dynamic(original)
    assert batch_is_dynamic(patched)
    fixed = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dynamic = ort.InferenceSession(patched.SerializeToString(), providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(7).uniform(0, 255, (8, 3, 416, 416)).astype(np.float32)
    together = dynamic.run(None, {"images": batch})[0]
    assert together.shape == (8, 3549, 85)
    for i in range(8):
        alone = fixed.run(None, {"images": batch[i : i + 1]})[0]
        np.testing.assert_allclose(together[i], alone[0], rtol=0, atol=1e-4)


def test_subscriber_json_of_a_detection(detector: Detector, dog_jpeg: bytes) -> None:
    import json

    found = detector.detect([dog_jpeg])[0]
    assert found is not None
    record = {
        "stream_id": "s",
        "frame_id": 1,
        "capture_ts_us": 1,
        "gateway_ts_us": 2,
        "worker_ts_us": 3,
        "width": 768,
        "height": 576,
        "model": "m",
        "worker": "w",
        "timings": stage_timings(batch_size=1),
        "objects": detected_objects(found, COCO_CLASSES),
    }
    body = json.loads(to_json(record))
    assert body["type"] == "detections"
    reference.assert_matches_reference(body["objects"], box_tol=0.11, score_tol=0.0011)

"""GPU-path letterbox (torch, run here on the CPU) against the Pillow reference path."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.inference.preprocess.batch import CpuPreparer
from pipeline.inference.preprocess.cpu import PAD_VALUE, letterbox

torch = pytest.importorskip("torch", reason="torch is not installed (pip install '.[torch]')")

from pipeline.inference.preprocess.torch import TorchPreparer, letterbox_batch  # noqa: E402

BROKEN = b"\xff\xd8\xff\xe0broken\xff\xd9"


def test_matches_pillow_on_the_sample_photo_within_one_level(dog_jpeg: bytes) -> None:
    cpu = CpuPreparer((416, 416)).prepare([dog_jpeg])
    gpu_path = TorchPreparer((416, 416), "cpu", torch.float32, nvjpeg=False).prepare([dog_jpeg])
    diff = np.abs(cpu.tensor - gpu_path.tensor.numpy())
    assert diff.max() <= 1.0  # Pillow rounds between its two passes; torch does not
    assert diff.mean() < 0.2
    np.testing.assert_array_equal(cpu.ratios, gpu_path.ratios)
    np.testing.assert_array_equal(cpu.sizes, gpu_path.sizes)


@pytest.mark.parametrize("shape", [(576, 768), (800, 400), (104, 208), (416, 416), (1080, 1920)])
def test_shapes_match_pillow(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    # A smooth image (real frames are smooth; noise exaggerates rounding differences).
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    image = np.stack([(x * 255 / shape[1]), (y * 255 / shape[0]), (x + y) % 256], axis=-1)
    image = np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8)
    expected, ratio = letterbox(image, (416, 416))
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    got, ratios = letterbox_batch([tensor], (416, 416), torch.float32)
    diff = np.abs(got[0].numpy().transpose(1, 2, 0) - expected.astype(np.float32))
    assert ratios == [ratio]
    assert diff.max() <= 2.0 and diff.mean() < 0.3


def test_mixed_sizes_in_one_batch_pad_with_grey() -> None:
    small = torch.full((3, 100, 200), 10, dtype=torch.uint8)
    tall = torch.full((3, 800, 400), 20, dtype=torch.uint8)
    out, ratios = letterbox_batch([small, tall, small], (416, 416), torch.float16)
    assert out.dtype == torch.float16 and out.shape == (3, 3, 416, 416)
    assert ratios == [2.08, 0.52, 2.08]
    assert (out[0, :, :208, :416] == 10).all() and (out[0, :, 208:] == PAD_VALUE).all()
    assert (out[1, :, :, :208] == 20).all() and (out[1, :, :, 208:] == PAD_VALUE).all()
    assert torch.equal(out[0], out[2])


def test_undecodable_frame_is_reported_and_left_out(dog_jpeg: bytes) -> None:
    preparer = TorchPreparer((416, 416), "cpu", torch.float32, nvjpeg=False)
    batch = preparer.prepare([dog_jpeg, BROKEN, dog_jpeg])
    assert batch.rows == [0, 2] and list(batch.errors) == [1]
    assert batch.tensor.shape == (2, 3, 416, 416)
    assert len(batch.decode_ms) == len(batch.preprocess_ms) == 2


def test_cpu_torch_resize_matches_pillow_within_one_level(dog_jpeg: bytes) -> None:
    pillow = CpuPreparer((416, 416), resize="pillow").prepare([dog_jpeg]).tensor
    fast = CpuPreparer((416, 416), resize="torch").prepare([dog_jpeg]).tensor
    diff = np.abs(pillow - fast)
    assert diff.max() <= 1.0 and diff.mean() < 0.2

"""The ONNX graph converted to torch computes what ONNX Runtime computes."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from pipeline import config
from pipeline.inference.backends.onnx_graph import make_batch_dynamic
from pipeline.inference.model_files import locate

torch = pytest.importorskip("torch", reason="torch is not installed (pip install '.[torch]')")

from pipeline.inference.backends.onnx_to_torch import UnsupportedGraph, onnx_to_torch  # noqa: E402

# VAE_MODEL_DIR and the rest of VAE_MODEL_*, as every service reads them.
MODEL = config.load().model


@pytest.fixture(scope="module")
def model() -> onnx.ModelProto:
    return make_batch_dynamic(onnx.load(str(locate("yolox_nano", MODEL.dir))))


def test_yolox_outputs_match_onnxruntime(model: onnx.ModelProto) -> None:
    module = onnx_to_torch(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(3).uniform(0, 255, (3, 3, 416, 416)).astype(np.float32)
    expected = session.run(None, {"images": batch})[0]
    with torch.inference_mode():
        got = module(torch.from_numpy(batch)).numpy()
    assert got.shape == (3, 3549, 85)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-4)


def test_silu_is_fused_and_no_shape_is_read_from_a_tensor(model: onnx.ModelProto) -> None:
    code = onnx_to_torch(model).code
    assert code.count("silu") > 50  # every x * sigmoid(x) of the backbone
    assert "sigmoid" in code  # the head's own sigmoids (objectness, classes) stay
    assert ".tolist()" not in code and ".item()" not in code  # CUDA-graph safe


def test_unsupported_op_is_named() -> None:
    node = helper.make_node("Softmax", ["x"], ["y"], name="head")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    with pytest.raises(UnsupportedGraph, match="Softmax"):
        onnx_to_torch(helper.make_model(graph))

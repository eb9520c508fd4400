"""Graph edits applied at load time: the shipped YOLOX export has its batch fixed to 1."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

BATCH_DIM = "batch"


def make_batch_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy whose batch dimension is symbolic.

    Sets dim 0 of every graph input and output to ``batch``, and rewrites the Reshape
    shape constants that hard-code the batch (first element 1, e.g. [1, 85, -1]) to 0,
    which ONNX reads as "copy this dimension from the input". Stale intermediate shape
    annotations are dropped so runtimes re-infer them.
    """
    patched = onnx.ModelProto()
    patched.CopyFrom(model)
    graph = patched.graph
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = BATCH_DIM
    reshape_shapes = {node.input[1] for node in graph.node if node.op_type == "Reshape"}
    for index, initializer in enumerate(graph.initializer):
        if initializer.name not in reshape_shapes:
            continue
        shape = numpy_helper.to_array(initializer)
        if shape.ndim == 1 and shape.size >= 2 and shape[0] == 1:
            fixed = shape.copy()
            fixed[0] = 0
            graph.initializer[index].CopyFrom(
                numpy_helper.from_array(fixed.astype(np.int64), initializer.name)
            )
    del graph.value_info[:]
    return patched


def batch_is_dynamic(model: onnx.ModelProto) -> bool:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return bool(dims) and not dims[0].dim_value


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Weights and arithmetic in float16, inputs and outputs kept float32.

    Float32 I/O keeps the pre- and post-processing the same for every precision, and
    the casts at the edges are what a strongly typed TensorRT network (TensorRT 11 has
    no FP16 builder flag) and ONNX Runtime's CUDA provider need to run FP16 kernels.
    Uses ONNX Runtime's own converter (shipped in the onnxruntime wheel).
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted: onnx.ModelProto = convert_float_to_float16(
        model, keep_io_types=True, disable_shape_infer=False
    )
    return converted

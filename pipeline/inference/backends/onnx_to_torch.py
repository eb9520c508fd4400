"""The ONNX graph as a torch module (torch.fx), for the torch backend and its CUDA graphs.

Why not onnx2torch: it imports torchvision at import time (for converters YOLOX does not
use), and torchvision has no CPU build for the pinned torch, so the torch backend could
not be tested without a GPU; and its Slice/Reshape/Resize modules read their parameters
back from tensors on every call (``.tolist()``), which stalls the GPU and cannot be
captured in a CUDA graph. Here every shape constant is resolved once, at conversion, to
plain Python values in the generated code, so a forward pass never reads device memory
on the host.

The op set is the one the YOLOX exports use (Conv, Sigmoid, Mul, Add, Concat, Slice,
MaxPool, Resize nearest, Reshape, Transpose, Constant); any other op is a clear error
naming it. ``x * sigmoid(x)`` (how the export spells SiLU) becomes one ``functional.silu``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import torch
from onnx import numpy_helper
from torch import fx, nn
from torch.nn import functional

INT64_MAX = np.iinfo(np.int64).max


class UnsupportedGraph(ValueError):
    """The ONNX graph uses an op or attribute this converter does not implement."""


def onnx_reshape(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """ONNX Reshape: 0 copies the input's dimension, -1 is inferred (read from x.shape)."""
    return x.reshape([x.shape[i] if s == 0 else s for i, s in enumerate(shape)])


def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _symmetric_pads(node: onnx.NodeProto, pads: Sequence[int]) -> tuple[int, int]:
    if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
        raise UnsupportedGraph(f"{node.op_type} {node.name!r}: asymmetric pads {list(pads)}")
    return int(pads[0]), int(pads[1])


class _Converter:
    """Walks the ONNX nodes in order (ONNX requires topological order) and emits fx nodes."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.root = nn.Module()
        self.graph = fx.Graph()
        self.constants: dict[str, npt.NDArray[Any]] = {
            init.name: numpy_helper.to_array(init) for init in model.graph.initializer
        }
        self.values: dict[str, fx.Node] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in model.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.producers = {out: node for node in model.graph.node for out in node.output}
        self._modules = 0
        self._buffers = 0

    # --- helpers ---------------------------------------------------------------------

    def _name(self, prefix: str) -> str:
        self._modules += 1
        return f"{prefix}{self._modules}"

    def constant(self, name: str, node: onnx.NodeProto) -> npt.NDArray[Any]:
        if name not in self.constants:
            raise UnsupportedGraph(
                f"{node.op_type} {node.name!r}: input {name!r} must be a constant in this converter"
            )
        return self.constants[name]

    def value(self, name: str) -> fx.Node:
        """An fx node for a graph value; a constant tensor becomes a registered buffer."""
        if name in self.values:
            return self.values[name]
        if name in self.constants:
            self._buffers += 1
            attr = f"const{self._buffers}"
            array = np.ascontiguousarray(self.constants[name])
            self.root.register_buffer(attr, torch.from_numpy(array.copy()))
            self.values[name] = self.graph.get_attr(attr)
            return self.values[name]
        raise UnsupportedGraph(f"value {name!r} is used before it is produced")

    # --- ops -------------------------------------------------------------------------

    def convert(self) -> fx.GraphModule:
        inputs = [i.name for i in self.model.graph.input if i.name not in self.constants]
        for name in inputs:
            self.values[name] = self.graph.placeholder(re.sub(r"\W", "_", name))
        for node in self.model.graph.node:
            handler = getattr(self, f"op_{node.op_type.lower()}", None)
            if handler is None:
                raise UnsupportedGraph(
                    f"ONNX op {node.op_type} (node {node.name!r}) is not supported by the "
                    "torch converter"
                )
            result = handler(node, _attributes(node))
            if result is not None:
                self.values[node.output[0]] = result
        outputs = [self.values[o.name] for o in self.model.graph.output]
        self.graph.output(outputs[0] if len(outputs) == 1 else tuple(outputs))
        module = fx.GraphModule(self.root, self.graph)
        module.graph.eliminate_dead_code()  # a Sigmoid whose only use became a SiLU
        module.recompile()
        module.eval()
        return module

    def op_constant(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
        if "value" not in attrs:
            raise UnsupportedGraph(f"Constant {node.name!r}: only the `value` attribute")
        self.constants[node.output[0]] = numpy_helper.to_array(attrs["value"])

    def op_conv(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> fx.Node:
        weight = self.constant(node.input[1], node)
        bias = self.constant(node.input[2], node) if len(node.input) > 2 else None
        out_channels, in_per_group, *kernel = weight.shape
        if len(kernel) != 2:
            raise UnsupportedGraph(f"Conv {node.name!r}: only 2-D convolutions")
        groups = int(attrs.get("group", 1))
        padding = _symmetric_pads(node, attrs.get("pads", [0, 0, 0, 0]))
        if _text(attrs.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
            raise UnsupportedGraph(f"Conv {node.name!r}: auto_pad {attrs['auto_pad']!r}")
        conv = nn.Conv2d(
            in_per_group * groups,
            out_channels,
            kernel_size=tuple(kernel),
            stride=tuple(attrs.get("strides", [1, 1])),
            padding=padding,
            dilation=tuple(attrs.get("dilations", [1, 1])),
            groups=groups,
            bias=bias is not None,
        )
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(weight.copy()))
            if bias is not None and conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(bias.copy()))
        name = self._name("conv")
        self.root.add_module(name, conv)
        return self.graph.call_module(name, (self.value(node.input[0]),))

    def op_sigmoid(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> fx.Node:
        return self.graph.call_function(torch.sigmoid, (self.value(node.input[0]),))

    def _silu_input(self, node: onnx.NodeProto) -> str | None:
        """The x of ``Mul(x, Sigmoid(x))``, or None when the Mul is something else."""
        a, b = node.input[0], node.input[1]
        for x, s in ((a, b), (b, a)):
            producer = self.producers.get(s)
            if producer is not None and producer.op_type == "Sigmoid" and producer.input[0] == x:
                return str(x)
        return None

    def op_mul(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> fx.Node:
        x = self._silu_input(node)
        if x is not None:
            return self.graph.call_function(functional.silu, (self.value(x),))
        return self.graph.call_function(
            torch.mul, (self.value(node.input[0]), self.value(node.input[1]))
        )

    def op_add(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> fx.Node:
        return self.graph.call_function(
            torch.add, (self.value(node.input[0]), self.value(node.input[1]))
        )

    def op_concat(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> fx.Node:
        parts = [self.value(name) for name in node.input]
        return self.graph.call_function(torch.cat, (parts,), {"dim": int(attrs["axis"])})

    def op_slice(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> fx.Node:
        if "starts" in attrs:  # opset < 10 keeps them as attributes
            starts, ends = attrs["starts"], attrs["ends"]
            axes = attrs.get("axes", list(range(len(starts))))
            steps = [1] * len(starts)
        else:
            starts = self.constant(node.input[1], node).tolist()
            ends = self.constant(node.input[2], node).tolist()
            axes = (
                self.constant(node.input[3], node).tolist()
                if len(node.input) > 3 and node.input[3]
                else list(range(len(starts)))
            )
            steps = (
                self.constant(node.input[4], node).tolist()
                if len(node.input) > 4 and node.input[4]
                else [1] * len(starts)
            )
        if any(int(a) < 0 for a in axes) or any(int(s) <= 0 for s in steps):
            raise UnsupportedGraph(f"Slice {node.name!r}: negative axes or steps")
        index: list[slice] = [slice(None)] * (max(int(a) for a in axes) + 1)
        for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
            stop = None if int(end) >= INT64_MAX // 2 else int(end)
            index[int(axis)] = slice(int(start), stop, int(step))
        return self.graph.call_function(operator.getitem, (self.value(node.input[0]), tuple(index)))

    def op_maxpool(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> fx.Node:
        if any(d != 1 for d in attrs.get("dilations", [1, 1])) or len(node.output) > 1:
            raise UnsupportedGraph(f"MaxPool {node.name!r}: dilations or indices output")
        return self.graph.call_function(
            functional.max_pool2d,
            (self.value(node.input[0]),),
            {
                "kernel_size": tuple(attrs["kernel_shape"]),
                "stride": tuple(attrs.get("strides", attrs["kernel_shape"])),
                "padding": _symmetric_pads(node, attrs.get("pads", [0, 0, 0, 0])),
                "ceil_mode": bool(attrs.get("ceil_mode", 0)),
            },
        )

    def op_resize(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> fx.Node:
        mode = _text(attrs.get("mode", "nearest"))
        transform = _text(attrs.get("coordinate_transformation_mode", "half_pixel"))
        nearest = _text(attrs.get("nearest_mode", "round_prefer_floor"))
        # torch's "nearest" is ONNX's asymmetric + floor exactly.
        if (mode, transform, nearest) != ("nearest", "asymmetric", "floor"):
            raise UnsupportedGraph(
                f"Resize {node.name!r}: mode {mode}/{transform}/{nearest} (only nearest, "
                "asymmetric, floor)"
            )
        scales = self.constant(node.input[2], node).tolist() if len(node.input) > 2 else []
        if len(scales) != 4 or scales[:2] != [1.0, 1.0]:
            raise UnsupportedGraph(f"Resize {node.name!r}: needs constant NCHW scales")
        return self.graph.call_function(
            functional.interpolate,
            (self.value(node.input[0]),),
            {"scale_factor": (float(scales[2]), float(scales[3])), "mode": "nearest"},
        )

    def op_reshape(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> fx.Node:
        if attrs.get("allowzero", 0):
            raise UnsupportedGraph(f"Reshape {node.name!r}: allowzero")
        shape = tuple(int(s) for s in self.constant(node.input[1], node).tolist())
        return self.graph.call_function(onnx_reshape, (self.value(node.input[0]), shape))

    def op_transpose(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> fx.Node:
        perm = tuple(int(p) for p in attrs["perm"])
        return self.graph.call_function(torch.permute, (self.value(node.input[0]), perm))


def onnx_to_torch(model: onnx.ModelProto) -> fx.GraphModule:
    """Convert an ONNX model (opset 9-13 ops listed above) to an eval-mode torch module."""
    return _Converter(model).convert()

"""The γ estimator network in every form: the PyTorch module, its ONNX graph, ONNX Runtime.

:class:`GammaEstimator` is the SAGC trunk (seven separable convolutions with U-shaped skips).
The CPU 8-bit paths run it on ONNX Runtime (:class:`OrtEstimator`): at the estimation size
PyTorch's per-layer dispatch costs more than the arithmetic, and ONNX Runtime runs the same
network about 2.5 times as fast on one core. Its graph (:func:`estimator_graph`) is built from
the module's weights (no tracing or export step, so it is ready in milliseconds) and gives the
module's output to float32 rounding.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import Tensor, nn

__all__ = ["MAX_WIDTH", "GammaEstimator", "OrtEstimator", "estimator_graph"]

MAX_WIDTH = 1024  # estimator channels: far beyond any trained model, short of exhausting memory


class _SeparableConv(nn.Sequential):
    """Depthwise 3×3 convolution followed by a pointwise 1×1 convolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels),
            nn.Conv2d(in_channels, out_channels, 1),
        )


class GammaEstimator(nn.Module):
    """The SAGC trunk: seven separable convolutions with U-shaped skips, sigmoid output.

    Maps an N×3×H×W image in [0, 1] to an N×3×H×W exponent map in (0, 1) at the same size.
    At ``width=32`` it has 10,561 parameters.

    ``context`` > 0 (ours; 0 is the paper's trunk) replaces that many of the deepest layer's
    channels by their image-wide mean before the decoder sees them. It adds no parameters and
    costs one mean per channel, but lets every γ depend on the whole picture: a well-exposed
    frame can be told from a dark one, which a 3×3 trunk at low resolution cannot see locally.

    ``white_point`` (ours) says the network was trained on frames normalised to their white
    point (:mod:`sagc.ops.exposure`): :class:`~sagc.models.Enhancer` normalises what it is given
    and converts its exponent back. The module itself is the network alone either way.
    """

    def __init__(self, *, width: int = 32, context: int = 0, white_point: bool = False) -> None:
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_WIDTH:
            raise ValueError(f"width must be a whole number in [1, {MAX_WIDTH}], got {width!r}")
        if isinstance(context, bool) or not isinstance(context, int):
            raise ValueError(f"context must be a whole number, got {context!r}")
        if not 0 <= context <= width:
            raise ValueError(f"context must be between 0 and width ({width}), got {context}")
        if not isinstance(white_point, bool):
            raise ValueError(f"white_point must be true or false, got {white_point!r}")
        self.width = width
        self.context = context
        self.white_point = white_point
        self.conv1 = _SeparableConv(3, width)
        self.conv2 = _SeparableConv(width, width)
        self.conv3 = _SeparableConv(width, width)
        self.conv4 = _SeparableConv(width, width)
        self.conv5 = _SeparableConv(2 * width, width)
        self.conv6 = _SeparableConv(2 * width, width)
        self.conv7 = _SeparableConv(2 * width, 3)

    def forward(self, x: Tensor) -> Tensor:
        x1 = F.relu(self.conv1(x))
        x2 = F.relu(self.conv2(x1))
        x3 = F.relu(self.conv3(x2))
        x4 = F.relu(self.conv4(x3))
        if self.context:
            local, pooled = x4.split([self.width - self.context, self.context], dim=1)
            x4 = torch.cat([local, pooled.mean((-2, -1), keepdim=True).expand_as(pooled)], dim=1)
        x5 = F.relu(self.conv5(torch.cat([x3, x4], dim=1)))
        x6 = F.relu(self.conv6(torch.cat([x2, x5], dim=1)))
        return torch.sigmoid(self.conv7(torch.cat([x1, x6], dim=1)))


_OPSET = 17
_IR_VERSION = 8  # the format version opset 17 needs: runtimes older than the onnx package still load it


def estimator_graph(estimator: GammaEstimator) -> onnx.ModelProto:
    """``estimator`` (:class:`GammaEstimator`, any width and context) as an ONNX
    model from N×3×H×W to N×3×H×W, sizes free."""
    weights = {name: value.detach().float().cpu().numpy() for name, value in estimator.state_dict().items()}
    initializers = [numpy_helper.from_array(value, name) for name, value in weights.items()]
    nodes: list[onnx.NodeProto] = []

    def separable(layer: str, source: str) -> str:
        channels = weights[f"{layer}.0.weight"].shape[0]
        nodes.append(
            helper.make_node(
                "Conv",
                [source, f"{layer}.0.weight", f"{layer}.0.bias"],
                [f"{layer}.dw"],
                group=channels,
                kernel_shape=[3, 3],
                pads=[1, 1, 1, 1],
            )
        )
        nodes.append(helper.make_node("Conv", [f"{layer}.dw", f"{layer}.1.weight", f"{layer}.1.bias"], [layer]))
        return layer

    def relu(name: str) -> str:
        nodes.append(helper.make_node("Relu", [name], [f"{name}.relu"]))
        return f"{name}.relu"

    def concat(a: str, b: str, name: str) -> str:
        nodes.append(helper.make_node("Concat", [a, b], [name], axis=1))
        return name

    x1 = relu(separable("conv1", "x"))
    x2 = relu(separable("conv2", x1))
    x3 = relu(separable("conv3", x2))
    x4 = relu(separable("conv4", x3))
    if estimator.context:
        local = estimator.width - estimator.context
        initializers += [
            numpy_helper.from_array(np.array(values, np.int64), name)
            for name, values in (("axis1", [1]), ("zero", [0]), ("split", [local]), ("end", [estimator.width]))
        ]
        nodes += [
            helper.make_node("Slice", [x4, "zero", "split", "axis1"], ["local"]),
            helper.make_node("Slice", [x4, "split", "end", "axis1"], ["pooled"]),
            helper.make_node("ReduceMean", ["pooled"], ["pooled.mean"], axes=[2, 3], keepdims=1),
            helper.make_node("Shape", ["pooled"], ["pooled.shape"]),
            helper.make_node("Expand", ["pooled.mean", "pooled.shape"], ["context"]),
        ]
        x4 = concat("local", "context", "conv4.context")
    x5 = relu(separable("conv5", concat(x3, x4, "cat5")))
    x6 = relu(separable("conv6", concat(x2, x5, "cat6")))
    out = separable("conv7", concat(x1, x6, "cat7"))
    nodes.append(helper.make_node("Sigmoid", [out], ["gamma"]))
    shape = ["n", 3, "h", "w"]
    graph = helper.make_graph(
        nodes,
        "sagc_gamma_estimator",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("gamma", TensorProto.FLOAT, shape)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)], ir_version=_IR_VERSION)
    onnx.checker.check_model(model)
    return model


class OrtEstimator:
    """Call it like the module: a 1×3×h×w float tensor in [0, 1] → γ (1×3×h×w float32 tensor)
    on the CPU, with ``threads`` intra-op threads."""

    def __init__(self, estimator: GammaEstimator, *, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only
        model = estimator_graph(estimator).SerializeToString()
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        pixels = np.ascontiguousarray(x.detach().float().cpu().numpy())
        (gamma,) = self._session.run(["gamma"], {"x": pixels})
        return torch.from_numpy(gamma)

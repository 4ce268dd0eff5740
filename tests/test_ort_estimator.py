"""The estimator on ONNX Runtime (the CPU 8-bit paths) gives the module's γ."""

from __future__ import annotations

import pytest
import torch
from onnx import TensorProto

from sagc.models import GammaEstimator, load_enhancer
from sagc.ops.estimator import OrtEstimator, estimator_graph
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.enhance.reference import ReferenceStage


@pytest.mark.parametrize("width,context", [(32, 0), (8, 3), (5, 5), (1, 0)])
def test_the_graph_computes_the_modules_gamma_at_any_size(width, context):
    torch.manual_seed(width)
    estimator = GammaEstimator(width=width, context=context).eval()
    for module in estimator.modules():  # weights away from the initial ones, biases included
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.4)
            torch.nn.init.normal_(module.bias, std=0.2)
    runtime = OrtEstimator(estimator)
    for size in ((90, 160), (7, 5), (1, 1), (33, 17)):
        x = torch.rand(1, 3, *size)
        with torch.inference_mode():
            want = estimator(x)
        got = runtime(x)
        assert got.shape == want.shape and got.dtype == torch.float32
        assert float((got - want).abs().max()) < 1e-4  # float32 sums in another order


def test_the_graph_holds_the_weights_it_was_built_from():
    estimator = load_enhancer("default").estimator
    model = estimator_graph(estimator)
    floats = [init for init in model.graph.initializer if init.data_type == TensorProto.FLOAT]
    parameters = sum(int(torch.tensor(init.dims).prod()) for init in floats)
    assert parameters == sum(p.numel() for p in estimator.parameters())


def test_the_cpu_stage_runs_its_8bit_estimate_on_onnx_runtime():
    fast, slow = CpuStage(load_enhancer("default")), ReferenceStage(load_enhancer("default"))
    x = torch.rand(1, 3, 45, 80)
    assert isinstance(fast._runtime, OrtEstimator) and slow._runtime is None
    with torch.inference_mode():
        gamma_fast, _ = fast._gamma(x)
        gamma_slow, _ = slow._gamma(x)
    assert float((gamma_fast - gamma_slow).abs().max()) < 1e-5

"""The exposure gate: well-exposed frames are left alone, dark ones enhanced as before."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sagc.core.errors import SagcError
from sagc.eval.metrics import luma
from sagc.models import Enhancer, ExposureGate, GammaEstimator, load_checkpoint, load_enhancer, save_enhancer
from sagc.stream.cpu_stage import CpuStage
from sagc.stream.frame import Frame


def _grey(level: float, highlight_fraction: float = 0.0, size: tuple[int, int] = (20, 50)) -> torch.Tensor:
    """A grey image at ``level`` whose first ``highlight_fraction`` of pixels are white."""
    x = torch.full((1, 3, *size), level)
    count = round(highlight_fraction * size[0] * size[1])
    x.view(1, 3, -1)[..., :count] = 1.0
    return x


def test_hand_computed_weights():
    gate = ExposureGate()  # mean luma ramp 0.2 → 0.3, highlight ramp 0.01 → 0.06
    assert float(gate(_grey(0.5))) == pytest.approx(1.0)  # bright but no highlights: a dim-lit scene
    assert float(gate(_grey(0.05, 0.1))) == pytest.approx(1.0)  # dark with a lamp: dark on average
    assert float(gate(_grey(0.3, 0.1))) == pytest.approx(0.0)  # mean 0.37, 10 % white: well exposed
    # mean luma 0.25 = 0.2242 · 0.965 + 0.035: half-way up both ramps → 1 − 0.5 · 0.5
    x = _grey((0.25 - 0.035) / 0.965, 0.035)
    assert float(luma(x).mean()) == pytest.approx(0.25, abs=1e-6)
    assert float(gate(x)) == pytest.approx(0.75, abs=1e-4)
    batch = torch.cat([_grey(0.5), _grey(0.3, 0.1)])
    torch.testing.assert_close(gate(batch), torch.tensor([1.0, 0.0]))  # one weight per image


def test_rejects_bad_thresholds():
    with pytest.raises(ValueError, match="mean_luma must rise"):
        ExposureGate(mean_luma=(0.3, 0.2))
    with pytest.raises(ValueError, match="highlight_level"):
        ExposureGate(highlight_level=1.0)


def test_well_exposed_images_come_back_unchanged_and_dark_ones_as_without_the_gate(weights):
    estimator = load_enhancer(weights).estimator
    gated = Enhancer(estimator, scale=2.0, denoise=4.0, gate=True).eval()
    plain = Enhancer(estimator, scale=2.0, denoise=4.0).eval()
    rng = torch.Generator().manual_seed(0)
    bright = (_grey(0.3, 0.1, (24, 40)) + 0.02 * torch.randn(1, 3, 24, 40, generator=rng)).clamp(0, 1)
    dark = (0.08 + 0.02 * torch.randn(1, 3, 24, 40, generator=rng)).clamp(0, 1)
    with torch.no_grad():
        assert torch.equal(torch.round(gated(bright) * 255), torch.round(bright * 255))  # γ = 1, no filter
        assert not torch.equal(torch.round(plain(bright) * 255), torch.round(bright * 255))
        torch.testing.assert_close(gated(dark), plain(dark))
        both = gated(torch.cat([bright, dark]))  # batched: each image gets its own weight
    torch.testing.assert_close(both, torch.cat([gated(bright), gated(dark)]))


def test_fast_path_gates_like_the_float_path(weights):
    half = ((_grey((0.25 - 0.035) / 0.965, 0.035, (48, 64)) * 255).round().to(torch.uint8))[0].permute(1, 2, 0)
    frame = Frame(np.ascontiguousarray(half.numpy()))
    outputs = {}
    for gate in (True, False):
        for fast in (True, False):
            stage = CpuStage(load_enhancer(weights, gate=gate, denoise=4), fast=fast)
            outputs[gate, fast] = stage(frame).rgb.astype(int)
    assert np.abs(outputs[True, True] - outputs[True, False]).max() <= 1
    gated_lift = (outputs[True, False] - frame.rgb).mean()
    full_lift = (outputs[False, False] - frame.rgb).mean()
    assert 0.0 < gated_lift < full_lift  # a weight of 0.75 (the ramps' middle) lifts less


def test_checkpoints_carry_the_switch(tmp_path):
    path = save_enhancer(tmp_path / "w.pt", GammaEstimator(), gate=True)
    assert load_checkpoint(path)["runtime"]["gate"] is True
    assert load_enhancer(path).gate == ExposureGate()
    assert load_enhancer(path, gate=False).gate is None
    older = load_checkpoint(path)
    del older["runtime"]["gate"]  # checkpoints from before the gate load with it off
    torch.save(older, tmp_path / "old.pt")
    assert load_enhancer(tmp_path / "old.pt").gate is None


def test_shipped_default_has_the_gate_on():
    assert load_enhancer("default").gate == ExposureGate()


def test_eval_spec_switches_the_gate(weights):
    from sagc.eval.methods import parse_method

    assert parse_method(f"sagc:{weights}:gate=on").enhancer.gate == ExposureGate()
    assert parse_method(f"sagc:{weights}:gate=off").enhancer.gate is None
    with pytest.raises(SagcError, match="gate must be on or off"):
        parse_method(f"sagc:{weights}:gate=maybe")

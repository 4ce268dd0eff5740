"""Guided upsampling of γ: window means, the affine-in-log-luma fixed point, the 8-bit path,
checkpoints and specs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sagc.core.errors import SagcError
from sagc.models import Enhancer, GammaEstimator, load_checkpoint, load_enhancer, save_enhancer
from sagc.models.gamma import apply_gamma
from sagc.ops.guide import LOG_FLOOR, guide_coefficients, guide_radius, guided_gamma, log_luma
from sagc.ops.guide import _box as box_mean
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.enhance.reference import ReferenceStage
from sagc.stream.media.frame import Frame


def _naive_box(t: torch.Tensor, radius: int) -> torch.Tensor:
    out = torch.empty_like(t)
    height, width = t.shape[-2:]
    for i in range(height):
        for j in range(width):
            window = t[..., max(0, i - radius) : i + radius + 1, max(0, j - radius) : j + radius + 1]
            out[..., i, j] = window.mean(dim=(-2, -1))
    return out


@pytest.mark.parametrize("radius", [1, 2, 7])
def test_window_means_shrink_at_the_borders(radius):
    t = torch.rand(2, 3, 6, 9, generator=torch.Generator().manual_seed(radius), dtype=torch.float64)
    torch.testing.assert_close(box_mean(t, radius), _naive_box(t, radius))


def test_radius_is_a_fraction_of_the_shorter_side():
    assert guide_radius(45, 60, 0.5) == 23  # 22.5 rounds up
    assert guide_radius(135, 240, 0.5) == 68
    assert guide_radius(4, 100, 0.1) == 1  # at least one pixel


def test_gamma_affine_in_log_luma_is_reproduced_at_full_resolution():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 32, 48, generator=generator, dtype=torch.float64) * 0.6 + 0.02
    small = F.avg_pool2d(x, 4)
    gamma = (0.3 - 0.08 * log_luma(small)).expand(-1, 3, -1, -1)  # exactly a · log Y + b
    a, b = guide_coefficients(gamma, log_luma(small), radius=3, eps=0.0)
    torch.testing.assert_close(a, torch.full_like(a, -0.08), atol=1e-5, rtol=0)
    torch.testing.assert_close(b, torch.full_like(b, 0.3), atol=1e-5, rtol=0)
    full = guided_gamma(gamma, small, x, fraction=0.5, eps=0.0)
    assert full.dtype == x.dtype and full.shape == x.shape
    # each full-resolution pixel gets the exponent of its own brightness, not its block's
    torch.testing.assert_close(full, (0.3 - 0.08 * log_luma(x)).expand(-1, 3, -1, -1), atol=1e-5, rtol=0)
    blocky = F.interpolate(gamma, size=x.shape[-2:], mode="bilinear", align_corners=False)
    assert (blocky - full).abs().max() > 0.05


def test_flat_gamma_stays_flat_and_gamma_one_leaves_the_image_alone():
    x = torch.rand(1, 3, 20, 30, generator=torch.Generator().manual_seed(1))
    small = F.avg_pool2d(x, 2)
    flat = torch.full((1, 3, 10, 15), 0.6)
    torch.testing.assert_close(guided_gamma(flat, small, x, fraction=0.5), torch.full_like(x, 0.6))
    ones = torch.ones(1, 3, 10, 15)  # what the gate makes of a well-exposed frame
    assert torch.equal(apply_gamma(x, guided_gamma(ones, small, x, fraction=0.5)), apply_gamma(x, torch.ones_like(x)))


def test_black_pixels_use_the_log_floor():
    x = torch.zeros(1, 3, 4, 4)
    assert torch.equal(log_luma(x), torch.full((1, 1, 4, 4), float(np.log(LOG_FLOOR)), dtype=torch.float32))


def test_enhancer_with_guide_follows_the_input_dtype_and_lifts_dark_pixels_more(weights):
    estimator = load_enhancer(weights).estimator.double()
    enhancer = Enhancer(estimator, scale=4.0, guide=0.5).eval()
    x = torch.linspace(0.02, 0.5, 64, dtype=torch.float64).view(1, 1, 1, 64).expand(1, 3, 48, 64).contiguous()
    with torch.no_grad():
        y = enhancer(x)
    assert y.dtype == torch.float64 and y.shape == x.shape
    assert (y >= x - 1e-9).all()
    with pytest.raises(ValueError, match="guide must be a finite number in"):
        Enhancer(estimator, guide=1.5)


@pytest.mark.parametrize("gain", [1.0, 1.5])
def test_fast_path_matches_the_float_path_with_guide(gain):
    # the trained default: its γ follows brightness, so the guide has something to do
    rng = np.random.default_rng(0)
    ramp = np.linspace(4, 80 / gain, 96, dtype=np.float32)[None, :, None]  # dark after the gain: enhanced
    rgb = np.clip(ramp + rng.normal(0, 3, (72, 96, 3)), 0, 255).round().astype(np.uint8)
    outputs = {
        fast: (CpuStage if fast else ReferenceStage)(load_enhancer("default", scale=4.0, gain=gain, guide=0.5))(
            Frame(rgb)
        ).rgb
        for fast in (True, False)
    }
    diff = np.abs(outputs[True].astype(int) - outputs[False].astype(int))
    assert diff.mean() < 0.6 and diff.max() <= 3
    plain = CpuStage(load_enhancer("default", scale=4.0, gain=gain, guide=0.0))(Frame(rgb)).rgb
    guided = np.abs(plain.astype(int) - outputs[True].astype(int))
    assert guided.max() >= 4 and guided.mean() > 1.5 * diff.mean()  # the guide changed more than the path


def test_checkpoints_carry_the_guide_and_specs_override_it(tmp_path, weights):
    from sagc.eval.methods import parse_method

    path = save_enhancer(tmp_path / "w.pt", GammaEstimator(), guide=0.5)
    assert load_checkpoint(path)["runtime"]["guide"] == 0.5
    assert load_enhancer(path).guide == 0.5 and load_enhancer(path, guide=0.0).guide == 0.0
    older = load_checkpoint(path)
    del older["runtime"]["guide"]  # checkpoints from before the guide load with it off
    torch.save(older, tmp_path / "old.pt")
    assert load_enhancer(tmp_path / "old.pt").guide == 0.0
    assert parse_method(f"sagc:{weights}:guide=0.3").enhancer.guide == 0.3
    with pytest.raises(SagcError, match="guide must be a finite number in"):
        load_enhancer(weights, guide=2.0)


def test_shipped_default_has_the_guide_on():
    assert load_enhancer("default").guide == 0.5

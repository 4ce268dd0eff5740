"""Exposure normalised to the white point (sagc.ops.exposure): the estimate does not depend on
how dark the capture was, in every form the enhancer runs in."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import torch

from sagc.models import Enhancer, GammaEstimator, load_enhancer, save_enhancer
from sagc.models.checkpoint import load_checkpoint
from sagc.models.export import export_onnx
from sagc.ops.exposure import MIN_WHITE, exponent_of_normalised, normalise_exposure, quantiles, white_point
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.media.frame import Frame


def _scene(seed: int = 0, size: tuple[int, int] = (48, 64)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 8, generator=g), size=size, mode="bilinear")
    return (smooth**2).clamp(0.01, 1.0)


def _estimator(seed: int = 0) -> GammaEstimator:
    torch.manual_seed(seed)
    return GammaEstimator(width=8, context=2, white_point=True).eval()


def test_the_white_point_is_the_99th_percentile_of_luma_within_its_range():
    small = _scene()
    luma = 0.2126 * small[:, 0] + 0.7152 * small[:, 1] + 0.0722 * small[:, 2]
    assert float(white_point(small)[0]) == pytest.approx(float(torch.quantile(luma.flatten(), 0.99)), rel=1e-5)
    assert float(white_point(small * 1e-3)[0]) == MIN_WHITE
    assert float(white_point(torch.ones(1, 3, 4, 4))[0]) == 1.0
    values = torch.rand(3, 101)
    for q, got in zip((0.1, 0.5, 0.99), quantiles(values, (0.1, 0.5, 0.99)), strict=True):
        torch.testing.assert_close(got, torch.quantile(values, q, dim=1))


def test_quantiles_by_selection_match_the_sorting_path_used_in_export_and_autograd():
    values = torch.rand(2, 14400, generator=torch.Generator().manual_seed(0))
    qs = (0.0, 0.01, 0.5, 0.95, 0.99, 1.0)
    selected = quantiles(values, qs)  # the CPU path: NumPy's selection
    sorted_ = quantiles(values.clone().requires_grad_(), qs)  # autograd takes the sorting path
    for a, b, q in zip(selected, sorted_, qs, strict=True):
        assert a.shape == (2,) and a.dtype == torch.float32
        torch.testing.assert_close(a, b.detach())
        torch.testing.assert_close(a, torch.quantile(values, q, dim=1))


def test_a_scaled_capture_normalises_to_the_same_picture():
    small = _scene()
    for k in (0.5, 0.2, 0.08):
        darker = small * k
        a = normalise_exposure(small, white_point(small))
        b = normalise_exposure(darker, white_point(darker))
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_the_exponent_of_the_frame_gives_what_the_normalised_exponent_gives_the_normalised_frame():
    small = _scene(1) * 0.3
    white = white_point(small)
    gamma = torch.rand_like(small) * 0.9 + 0.05
    got = small ** exponent_of_normalised(gamma, small, white)
    torch.testing.assert_close(got, normalise_exposure(small, white) ** gamma, rtol=1e-4, atol=1e-5)
    factor = exponent_of_normalised(torch.ones_like(small), small, white)
    assert float(factor.min()) >= 0.0 and float(factor.max()) <= 1.0


def test_the_enhancer_makes_the_same_picture_of_any_darkening_of_a_scene():
    enhancer = Enhancer(_estimator(), scale=1.0)
    scene = _scene(2) * 0.9
    with torch.no_grad():
        outputs = [enhancer(scene * k) for k in (1.0, 0.4, 0.1)]
    for out in outputs[1:]:
        assert float((out - outputs[0]).abs().max()) < 1e-4
    plain = Enhancer(GammaEstimator(width=8, context=2).eval(), scale=1.0)
    plain.estimator.load_state_dict(enhancer.estimator.state_dict())
    with torch.no_grad():  # the same weights without the normalisation: darker in, darker out
        assert float((plain(scene * 0.1) - plain(scene)).abs().mean()) > 0.05


def test_checkpoints_cpu_stage_and_onnx_export_keep_the_normalisation(tmp_path):
    path = save_enhancer(tmp_path / "wp.pt", _estimator(3), scale=4.0, guide=0.5)
    assert load_checkpoint(path)["arch"]["white_point"] is True
    enhancer = load_enhancer(path)
    assert enhancer.white_point
    # the 8-bit CPU stage (ONNX Runtime estimate) against the float enhancer
    rgb = (_scene(4, (96, 128))[0].permute(1, 2, 0).numpy() * 0.25 * 255).round().astype(np.uint8)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        want = enhancer(x)[0].permute(1, 2, 0).numpy() * 255
    got = CpuStage(load_enhancer(path))(Frame(rgb)).rgb.astype(np.float64)
    assert np.abs(got - want).mean() < 1.0
    # the exported graph, run by ONNX Runtime
    model = export_onnx(enhancer, tmp_path / "wp.onnx")
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (exported,) = session.run(["enhanced"], {"image": x.numpy()})
    assert np.abs(exported[0].transpose(1, 2, 0) - want / 255).max() < 1e-4

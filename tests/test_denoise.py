"""Noise reduction before brightening: filter and noise estimate against independent oracles; the wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sagc.core.errors import SagcError
from sagc.core.synth import darken, sample_darken_params
from sagc.eval.metrics import psnr
from sagc.models import (
    Enhancer,
    GammaEstimator,
    bilateral_filter,
    load_checkpoint,
    load_enhancer,
    noise_level,
    reduce_noise,
    save_enhancer,
)
from sagc.models.gamma import apply_gamma
from sagc.ops.denoise import noise_level_8bit
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.enhance.reference import ReferenceStage
from sagc.stream.media.demo import street_scene
from sagc.stream.media.frame import Frame

from .conftest import immerkaer


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


def _pixels(x: torch.Tensor) -> np.ndarray:
    return (x[0].permute(1, 2, 0) * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def _noisy_scene(seed: int = 0, size: tuple[int, int] = (160, 96), sigma: float = 10.0) -> np.ndarray:
    clean = street_scene(4, size=size, rate=30) * 255
    rng = np.random.default_rng(seed)
    return np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).round().astype(np.uint8)


def test_keeps_flat_images_and_strong_edges_and_removes_noise():
    flat = torch.full((1, 3, 20, 30), 0.4, dtype=torch.float64)
    out = bilateral_filter(flat, sigma_color=20 / 255)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, flat)

    edge = torch.zeros(1, 3, 20, 30)
    edge[..., 15:] = 0.8  # a step of 204 levels: ten colour σ
    torch.testing.assert_close(bilateral_filter(edge, sigma_color=20 / 255), edge, atol=1e-6, rtol=0)

    g = torch.Generator().manual_seed(0)
    noisy = (0.3 + 0.02 * torch.randn(1, 3, 64, 64, generator=g)).clamp(0, 1)
    assert float(bilateral_filter(noisy, sigma_color=20 / 255).std()) < 0.4 * float(noisy.std())


def test_one_sigma_per_image_and_half_precision():
    a, b = _tensor(_noisy_scene(seed=1)), _tensor(_noisy_scene(seed=2, sigma=4.0))
    both = bilateral_filter(torch.cat([a, b]), sigma_color=torch.tensor([10 / 255, 30 / 255]))
    torch.testing.assert_close(both[:1], bilateral_filter(a, sigma_color=10 / 255))
    torch.testing.assert_close(both[1:], bilateral_filter(b, sigma_color=30 / 255))
    assert noise_level(a.half()).dtype == torch.float32
    torch.testing.assert_close(noise_level(a.half()), noise_level(a), rtol=2e-3, atol=1e-5)
    half = bilateral_filter(a.half(), sigma_color=20 / 255)
    assert half.dtype == torch.float16
    assert float((half.float() - bilateral_filter(a, sigma_color=20 / 255)).abs().max()) < 2e-3
    with pytest.raises(ValueError, match="2 values for 1 images"):
        bilateral_filter(a, sigma_color=torch.tensor([0.1, 0.2]))


def test_rejects_bad_arguments():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="sigma_color"):
        bilateral_filter(x, sigma_color=0.0)
    with pytest.raises(ValueError, match="float"):
        bilateral_filter(x.to(torch.uint8), sigma_color=0.1)
    with pytest.raises(ValueError, match="radius"):
        bilateral_filter(x, sigma_color=0.1, radius=0)
    tiny = torch.rand(1, 3, 2, 9)
    assert bilateral_filter(tiny, sigma_color=0.1) is tiny  # smaller than the window


def _dark_scene() -> np.ndarray:
    clean = (street_scene(10, size=(241, 137), rate=30) * 255).round().astype(np.uint8)
    g = torch.Generator().manual_seed(1)
    return _pixels(darken(_tensor(clean), sample_darken_params(g), generator=g))


def test_noise_level_measures_white_noise_and_ignores_smooth_structure():
    rng = np.random.default_rng(2)
    ramp = np.linspace(40, 200, 120)[None, :, None] + np.linspace(0, 30, 90)[:, None, None]
    clean = np.repeat(ramp, 3, axis=2)
    assert float(noise_level(_tensor(clean.round().astype(np.uint8)))) * 255 < 0.5  # only rounding
    for sigma in (2.0, 6.0):
        noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).round().astype(np.uint8)
        grey_sigma = sigma * np.sqrt(0.299**2 + 0.587**2 + 0.114**2)  # independent noise per channel
        torch_estimate = float(noise_level(_tensor(noisy))) * 255
        assert torch_estimate == pytest.approx(grey_sigma, rel=0.1)
        assert torch_estimate == pytest.approx(immerkaer(noisy), abs=1e-3)
        assert noise_level_8bit(noisy) == pytest.approx(immerkaer(noisy), abs=1e-3)
    batch = torch.cat([_tensor(clean.round().astype(np.uint8)), _tensor(noisy)])
    levels = noise_level(batch) * 255
    assert levels.shape == (2,) and float(levels[0]) < 0.5 < float(levels[1])
    assert float(noise_level(torch.rand(1, 3, 2, 5)).item()) == 0.0  # too small to measure


def test_reduce_noise_scales_with_the_measured_noise():
    x = _tensor(_noisy_scene(sigma=6.0))
    level = float(noise_level(x))
    torch.testing.assert_close(reduce_noise(x, strength=4.0), bilateral_filter(x, sigma_color=4.0 * level))
    assert reduce_noise(x, strength=0.0) is x
    flat = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(reduce_noise(flat, strength=4.0), flat)  # noiseless: untouched
    clean = torch.full_like(x, 0.3)  # in a batch, each image is filtered by its own noise
    out = reduce_noise(torch.cat([x, clean]), strength=4.0)
    torch.testing.assert_close(out[:1], bilateral_filter(x, sigma_color=4.0 * level))
    torch.testing.assert_close(out[1:], clean)
    with pytest.raises(ValueError, match="strength"):
        reduce_noise(x, strength=-1.0)


def test_enhancer_filters_before_the_exponent(weights):
    x = _tensor(_dark_scene())
    plain = load_enhancer(weights, denoise=0)
    filtered = load_enhancer(weights, denoise=4)
    with torch.no_grad():
        gamma = torch.nn.functional.interpolate(plain.estimate(x), size=x.shape[-2:], mode="bilinear")
        want = apply_gamma(bilateral_filter(x, sigma_color=4 * float(noise_level(x))), gamma)
        torch.testing.assert_close(filtered(x), want)
        # the filter smooths what brightening would amplify: less pixel-to-pixel variation
        roughness = [float((y[..., 1:] - y[..., :-1]).abs().mean()) for y in (plain(x), filtered(x))]
    assert roughness[1] < 0.8 * roughness[0]
    with pytest.raises(ValueError, match="denoise"):
        Enhancer(GammaEstimator(), denoise=-1.0)


@pytest.mark.parametrize("gain", [1.0, 1.5])
def test_fast_path_filters_like_the_float_path(weights, gain):
    dark = _dark_scene()
    fast = CpuStage(load_enhancer(weights, scale=4.0, gain=gain, denoise=4))(Frame(dark)).rgb
    slow = ReferenceStage(load_enhancer(weights, scale=4.0, gain=gain, denoise=4))(Frame(dark)).rgb
    plain = CpuStage(load_enhancer(weights, scale=4.0, gain=gain, denoise=0))(Frame(dark)).rgb
    assert float(psnr(_tensor(fast), _tensor(slow))) > 40
    assert float(psnr(_tensor(fast), _tensor(plain))) < 40  # and the filter did something


def test_checkpoints_carry_the_setting(tmp_path):
    path = save_enhancer(tmp_path / "w.pt", GammaEstimator(), scale=8.0, denoise=4.0)
    assert load_checkpoint(path)["runtime"]["denoise"] == 4.0
    assert load_enhancer(path).denoise == 4.0
    assert load_enhancer(path, denoise=0).denoise == 0.0
    older = load_checkpoint(path)
    del older["runtime"]["denoise"]  # checkpoints from before the option load with it off
    torch.save(older, tmp_path / "old.pt")
    assert load_enhancer(tmp_path / "old.pt").denoise == 0.0
    with pytest.raises(SagcError, match="denoise must be a finite number"):
        load_enhancer(path, denoise=-3)


def test_shipped_default_denoises():
    assert load_enhancer("default").denoise == 7.0

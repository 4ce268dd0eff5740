"""Noise reduction before brightening: our bilateral filter against OpenCV's, and its wiring."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from sagc.demo import street_scene
from sagc.errors import SagcError
from sagc.eval.metrics import psnr
from sagc.models import Enhancer, GammaEstimator, bilateral_filter, load_checkpoint, load_enhancer, save_enhancer
from sagc.models.gamma import apply_gamma
from sagc.stream.frame import Frame
from sagc.stream.stage import FrameEnhancer
from sagc.synth import darken, sample_darken_params


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


def _pixels(x: torch.Tensor) -> np.ndarray:
    return (x[0].permute(1, 2, 0) * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def _noisy_scene(seed: int = 0, size: tuple[int, int] = (160, 96), sigma: float = 10.0) -> np.ndarray:
    clean = street_scene(4, size=size, rate=30) * 255
    rng = np.random.default_rng(seed)
    return np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("sigma_color", [5.0, 20.0, 60.0])
def test_matches_opencv(sigma_color):
    rgb = _noisy_scene()
    want = cv2.bilateralFilter(rgb, 5, sigma_color, 3.0)
    got = _pixels(bilateral_filter(_tensor(rgb), sigma_color=sigma_color / 255))
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= 1
    assert (diff > 0).mean() < 1e-3
    assert (got != rgb).mean() > 0.1  # it did filter


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


def test_enhancer_filters_before_the_exponent(weights):
    x = _tensor(_dark_scene())
    plain = load_enhancer(weights, denoise=0)
    filtered = load_enhancer(weights, denoise=20)
    with torch.no_grad():
        gamma = plain.estimate(x)
        want = apply_gamma(
            bilateral_filter(x, sigma_color=20 / 255),
            torch.nn.functional.interpolate(gamma, size=x.shape[-2:], mode="bilinear", align_corners=False),
        )
        torch.testing.assert_close(filtered(x), want)
        # the filter smooths what brightening would amplify: less pixel-to-pixel variation
        roughness = [float((y[..., 1:] - y[..., :-1]).abs().mean()) for y in (plain(x), filtered(x))]
    assert roughness[1] < 0.8 * roughness[0]
    with pytest.raises(ValueError, match="denoise"):
        Enhancer(GammaEstimator(), denoise=-1.0)


@pytest.mark.parametrize("gain", [1.0, 1.5])
def test_fast_path_filters_like_the_float_path(weights, gain):
    dark = _dark_scene()
    fast = FrameEnhancer(load_enhancer(weights, scale=4.0, gain=gain, denoise=20))(Frame(dark)).rgb
    slow = FrameEnhancer(load_enhancer(weights, scale=4.0, gain=gain, denoise=20), fast=False)(Frame(dark)).rgb
    plain = FrameEnhancer(load_enhancer(weights, scale=4.0, gain=gain, denoise=0))(Frame(dark)).rgb
    assert float(psnr(_tensor(fast), _tensor(slow))) > 40
    assert float(psnr(_tensor(fast), _tensor(plain))) < 40  # and the filter did something


def test_checkpoints_carry_the_setting(tmp_path):
    path = save_enhancer(tmp_path / "w.pt", GammaEstimator(), scale=8.0, denoise=20.0)
    assert load_checkpoint(path)["runtime"]["denoise"] == 20.0
    assert load_enhancer(path).denoise == 20.0
    assert load_enhancer(path, denoise=0).denoise == 0.0
    older = load_checkpoint(path)
    del older["runtime"]["denoise"]  # checkpoints from before the option load with it off
    torch.save(older, tmp_path / "old.pt")
    assert load_enhancer(tmp_path / "old.pt").denoise == 0.0
    with pytest.raises(SagcError, match="denoise must be >= 0"):
        load_enhancer(path, denoise=-3)


def test_shipped_default_denoises():
    assert load_enhancer("default").denoise == 20.0

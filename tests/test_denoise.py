"""Noise reduction before brightening: filter and noise estimate against independent oracles; the wiring."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from sagc.core.errors import SagcError
from sagc.core.synth import NIGHT_LIGHT, darken, sample_darken_params
from sagc.eval.metrics import psnr, ssim
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
from sagc.ops.colour import grey
from sagc.ops.denoise import (
    NIGHT_PASS,
    PLANAR_LUMA_SIGMA,
    PLANAR_NIGHT_LUMA_SIGMA,
    SIGMA_SPACE,
    denoise_8bit,
    denoise_planes,
    night_filter,
    noise_level_8bit,
    noise_level_plane,
)
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
    torch.testing.assert_close(
        reduce_noise(x, strength=4.0, noise=torch.tensor([2 * level])), reduce_noise(x, strength=8.0)
    )
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


def _colour_noise(x: torch.Tensor) -> float:
    """The spread of each channel's difference from the grey: colour noise on a grey scene."""
    return float((x - grey(x)).std())


def _grey_step_with_noise(seed: int = 0) -> torch.Tensor:
    """A dark grey step (0.04 | 0.5) with independent noise in each channel, N×3×64×96."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((1, 3, 64, 96), 0.04)
    x[..., 48:] = 0.5
    return (x + 0.01 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def test_night_filter_removes_colour_noise_and_keeps_edges():
    x = _grey_step_with_noise()
    sigma = 7.0 * noise_level(x)
    once = bilateral_filter(x, sigma_color=sigma)
    night = night_filter(once, sigma=sigma, night=torch.ones(1))
    assert _colour_noise(night) < 0.5 * _colour_noise(once)
    for half in (slice(0, 40), slice(56, 96)):  # the step's sides keep their levels
        assert float(night[..., half].mean()) == pytest.approx(float(x[..., half].mean()), abs=2e-3)
    assert float(night[..., 47].mean()) < 0.1 < 0.45 < float(night[..., 48].mean())  # and it stays a step
    torch.testing.assert_close(night_filter(once, sigma=sigma, night=torch.zeros(1)), once, atol=1e-6, rtol=0)
    half_way = night_filter(once, sigma=sigma, night=torch.full((1,), 0.5))
    assert _colour_noise(night) < _colour_noise(half_way) < _colour_noise(once)


def test_reduce_noise_applies_the_night_filter_per_image():
    x = _grey_step_with_noise()
    sigma = 7.0 * noise_level(x)
    batch = torch.cat([x, x])
    out = reduce_noise(batch, strength=7.0, night=torch.tensor([0.0, 1.0]))
    once = bilateral_filter(x, sigma_color=sigma)
    torch.testing.assert_close(out[:1], once, atol=1e-6, rtol=0)
    torch.testing.assert_close(out[1:], night_filter(once, sigma=sigma, night=torch.ones(1)))
    weightless = reduce_noise(x, strength=7.0, weight=torch.zeros(1), night=torch.ones(1))
    torch.testing.assert_close(weightless, x)  # a frame the gate leaves alone is not filtered at night either


@pytest.mark.parametrize("night", [0.0, 0.4, 1.0])
def test_the_night_filter_forms_agree(night):
    rgb = _pixels(_grey_step_with_noise(1))
    noise = noise_level_8bit(rgb)
    fast = torch.from_numpy(denoise_8bit(rgb, noise=noise, strength=7.0, night=night)).permute(2, 0, 1)[None] / 255
    slow = reduce_noise(_tensor(rgb), strength=7.0, night=torch.tensor([night]))
    assert float((fast - slow).abs().mean()) * 255 < 0.2
    assert float((fast - slow).abs().max()) * 255 < 3.0


def test_planes_at_night_lose_chroma_noise_and_keep_luma_levels():
    rng = np.random.default_rng(3)
    luma = np.clip(30 + rng.normal(0, 2, (64, 96)), 0, 255).astype(np.float32)
    chroma = [np.clip(128 + rng.normal(0, 2, (32, 48)), 0, 255).astype(np.float32) for _ in range(2)]
    options = {"noise": noise_level_plane(luma), "strength": 7.0, "luma_span": 219.0, "chroma_span": 224.0}
    day = denoise_planes((luma, *chroma), **options)
    night = denoise_planes((luma, *chroma), **options, night=1.0)
    np.testing.assert_array_equal(  # night 0: luma's one pass, OpenCV's filter
        day[0], cv2.bilateralFilter(luma, 5, 7.0 * options["noise"] * PLANAR_LUMA_SIGMA, SIGMA_SPACE)
    )
    first = 7.0 * options["noise"] * PLANAR_NIGHT_LUMA_SIGMA  # full night: the night's fraction, then its second pass
    np.testing.assert_array_equal(
        night[0],
        cv2.bilateralFilter(cv2.bilateralFilter(luma, 5, first, SIGMA_SPACE), 5, first * NIGHT_PASS, SIGMA_SPACE),
    )
    for before, after in zip(day[1:], night[1:], strict=True):
        assert float(after.std()) < 0.7 * float(before.std())
        assert float(after.mean()) == pytest.approx(128.0, abs=0.2)
    assert float(night[0].std()) < float(day[0].std())
    assert float(night[0].mean()) == pytest.approx(float(luma.mean()), abs=0.2)


def test_fast_path_filters_like_the_float_path_at_night():
    clean = (street_scene(6, size=(240, 136), rate=30) * 255).round().astype(np.uint8)
    g = torch.Generator().manual_seed(4)
    dark = _pixels(darken(_tensor(clean), sample_darken_params(g, light=NIGHT_LIGHT), generator=g))
    enhancer = load_enhancer("default")
    x = _tensor(dark)
    with torch.no_grad():
        small = enhancer.downscale(x)
        night = enhancer.exposure_gate.nightness(small)
        gamma, weight, levels = enhancer.gamma(small)
        parts = {"small": levels(small), "levels": levels}
        with_night = enhancer.apply(x, gamma, weight, **parts, night=night)
        without = enhancer.apply(x, gamma, weight, **parts)
    assert float(night) == 1.0
    torch.testing.assert_close(enhancer(x), with_night)  # the enhancer passes its frames' nightness on
    fast = _tensor(CpuStage(load_enhancer("default"))(Frame(dark)).rgb)
    slow = _tensor(ReferenceStage(load_enhancer("default"))(Frame(dark)).rgb)
    assert float(psnr(fast, slow)) > 38
    assert float(psnr(fast, with_night)) > float(psnr(fast, without)) + 3  # the fast path filters at night too
    reference = _tensor(clean)
    assert float(ssim(fast, reference)) > float(ssim(without, reference)) + 0.05  # nearer the clean scene's structure

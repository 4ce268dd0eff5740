"""Every algorithm of ``sagc.ops`` in all its forms, compared in one place: the torch float
reference against the 8-bit RGB, 4:2:0 plane and ONNX forms the CPU paths run."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from onnx import TensorProto

from sagc.models import load_enhancer
from sagc.ops.black import MAX_BLACK, Levels, black_level, toe, toe_array
from sagc.ops.colour import (
    LUMA_WEIGHTS,
    luma,
    luma_weights,
    range_scales,
    rgb_to_ycc,
    ycc_to_rgb,
    ycc_to_rgb_levels,
)
from sagc.ops.denoise import (
    DEFAULT_STRENGTH,
    MIN_NOISE_LEVELS,
    bilateral_filter,
    denoise_8bit,
    denoise_planes,
    noise_level,
    noise_level_8bit,
    noise_level_plane,
)
from sagc.ops.downscale import block_means, downscale, half_luma, half_rgb, small_rgb, thumbnail_8bit
from sagc.ops.estimator import GammaEstimator, OrtEstimator, estimator_graph
from sagc.ops.gamma import GammaMap, PlanarGammaMap, apply_gamma
from sagc.ops.guide import Curve, guide_coefficients, guide_coefficients_cv, guided_gamma, log_luma
from sagc.ops.histogram import histogram_distance, histogram_distance_8bit
from sagc.ops.temporal_denoise import TemporalDenoiser


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255


def _pixels(x: torch.Tensor) -> np.ndarray:
    return (x[0].permute(1, 2, 0) * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def _noisy_scene(seed: int = 0, size: tuple[int, int] = (96, 160), sigma: float = 10.0) -> np.ndarray:
    """Smooth gradients and blocks plus Gaussian noise, H×W×3 uint8."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float32)
    clean = np.stack([60 + cols / size[1] * 120, 40 + rows / size[0] * 100, 90 + 0 * rows], axis=-1)
    clean[size[0] // 3 : 2 * size[0] // 3, size[1] // 4 : size[1] // 2] += 70  # a strong edge
    return np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).round().astype(np.uint8)


# colour


@pytest.mark.parametrize("matrix", ["itu601", "itu709", "bt2020"])
@pytest.mark.parametrize("color_range", [1, 2])
def test_the_ycc_matrices_invert_each_other_and_map_grey_to_luma(matrix, color_range):
    black, luma_span, chroma_span = range_scales(color_range)
    forward, inverse = ycc_to_rgb(matrix, color_range), rgb_to_ycc(matrix, color_range)
    ycc = np.array([[[black, 128.0, 128.0], [black + luma_span, 128.0, 128.0], [100.0, 90.0, 170.0]]], np.float32)
    assert np.abs(cv2.transform(cv2.transform(ycc, forward), inverse) - ycc).max() < 1e-3
    grey = cv2.transform(ycc[:, :2], forward)
    assert np.abs(grey - np.array([[[0, 0, 0], [1, 1, 1]]])).max() < 1e-6  # black and white
    rgb = cv2.transform(ycc[:, 2:], forward)[0, 0]
    assert abs(float(np.dot(luma_weights(matrix), rgb)) - (100.0 - black) / luma_span) < 1e-6  # Y is luma
    assert np.allclose(ycc_to_rgb_levels(matrix, color_range), forward[:, :3] * 255)


def test_rec709_luma_is_one_definition():
    x = torch.rand(2, 3, 4, 5)
    want = sum(w * x[:, c : c + 1] for c, w in enumerate(LUMA_WEIGHTS))
    assert torch.allclose(luma(x), want)


# downscale


@pytest.mark.parametrize(
    "shape,factor", [((181, 321, 3), 8), ((180, 320), 8), ((17, 9, 3), 4), ((16, 16), 4), ((3, 3), 2)]
)
def test_block_means_average_the_float_paths_blocks(shape, factor):
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    tensor = torch.from_numpy(image)
    tensor = tensor[None, None] if image.ndim == 2 else tensor.permute(2, 0, 1)[None]
    want = torch.nn.functional.avg_pool2d(tensor, factor, factor, ceil_mode=True)  # Enhancer.downscale's
    want = want[0, 0] if image.ndim == 2 else want[0].permute(1, 2, 0)
    got = block_means(image, factor)
    assert got.shape == tuple(want.shape) and np.abs(got - want.numpy()).max() < 1e-6


@pytest.mark.parametrize("size,scale", [((90, 160), 8.0), ((181, 321), 8.0), ((40, 60), 1.0), ((45, 80), 3.5)])
def test_the_8bit_thumbnail_is_the_float_paths(size, scale):
    rgb = np.random.default_rng(1).integers(0, 256, (*size, 3), dtype=np.uint8)
    got = thumbnail_8bit(rgb, scale=scale)
    want = _pixels(downscale(_tensor(rgb), scale=scale))
    assert got.shape == want.shape
    if scale == 1.0:
        assert got is rgb
    if scale == int(scale):
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    else:  # a fractional scale: an area resize against 3×3 blocks resized bilinearly, the same light
        assert abs(float(got.mean()) - float(want.mean())) < 1.0


def test_the_planar_thumbnail_is_the_rgb_thumbnail_of_the_same_picture():
    rgb = _noisy_scene(size=(96, 160))
    ycc = cv2.transform(rgb.astype(np.float32) / 255, rgb_to_ycc("itu601", 2))  # full range: nothing clipped
    y, u, v = (ycc[..., i] for i in range(3))
    u, v = (cv2.resize(c, (80, 48), interpolation=cv2.INTER_AREA) for c in (u, v))
    luma_half = half_luma(y)
    got = small_rgb(half_rgb(luma_half, u, v, matrix="itu601", color_range=2), (12, 20), factor=4)
    want = thumbnail_8bit(rgb, scale=8.0)
    assert got.shape == want.shape == (12, 20, 3)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


# denoise


@pytest.mark.parametrize("sigma_color", [5.0, 20.0, 60.0])
def test_matches_opencv(sigma_color):
    rgb = _noisy_scene()
    want = cv2.bilateralFilter(rgb, 5, sigma_color, 3.0)
    got = _pixels(bilateral_filter(_tensor(rgb), sigma_color=sigma_color / 255))
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= 1
    assert (diff > 0).mean() < 1e-3
    assert (got != rgb).mean() > 0.1  # it did filter


def test_the_noise_level_forms_agree():
    rgb = _noisy_scene(sigma=6.0)
    torch_levels = float(noise_level(_tensor(rgb))) * 255
    assert abs(noise_level_8bit(rgb) - torch_levels) < 1e-3
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert abs(noise_level_plane(grey.astype(np.float32)) - noise_level_8bit(np.dstack([grey] * 3))) < 1e-3
    assert abs(noise_level_plane(grey) - noise_level_plane(grey.astype(np.float32))) < 1e-4  # 16-bit path exact


def test_the_8bit_filter_is_the_float_filter_and_skips_clean_frames():
    rgb = _noisy_scene(sigma=8.0)
    noise = noise_level_8bit(rgb)
    got = denoise_8bit(rgb, noise=noise, strength=2.0)
    want = bilateral_filter(_tensor(rgb), sigma_color=2.0 * noise / 255) * 255
    assert got.dtype == np.float32
    assert np.abs(got - want[0].permute(1, 2, 0).numpy()).max() < 0.5
    assert denoise_8bit(rgb, noise=MIN_NOISE_LEVELS / 2, strength=2.0) is rgb
    assert denoise_8bit(rgb, noise=noise, strength=0.0) is rgb


def test_the_planar_filter_filters_each_plane_and_skips_clean_frames():
    rgb = _noisy_scene(sigma=8.0)
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    u = v = np.full((48, 80), 128, np.uint8)
    planes = (y, u, v)
    noise = noise_level_plane(y)
    out = denoise_planes(planes, noise=noise, strength=DEFAULT_STRENGTH, luma_span=255.0, chroma_span=255.0)
    assert [p.shape for p in out] == [p.shape for p in planes] and all(p.dtype == np.float32 for p in out)
    assert noise_level_plane(out[0]) < 0.75 * noise  # luma noise reduced at the shipped strength
    assert np.array_equal(out[1], u.astype(np.float32))  # flat chroma stays
    assert denoise_planes(planes, noise=0.1, strength=2.0, luma_span=255.0, chroma_span=255.0) is planes


# guide


def test_the_opencv_fit_is_the_torch_fit():
    rng = np.random.default_rng(3)
    gamma = rng.random((23, 37, 3)).astype(np.float32)
    guide = np.log(rng.random((23, 37)).astype(np.float32) + 1e-3)
    for radius in (1, 4, 11):
        a, b = guide_coefficients_cv(gamma, guide, radius=radius)
        ta, tb = guide_coefficients(
            torch.from_numpy(gamma).permute(2, 0, 1)[None], torch.from_numpy(guide)[None, None], radius=radius
        )
        assert np.abs(a - ta[0].permute(1, 2, 0).numpy()).max() < 1e-3
        assert np.abs(b - tb[0].permute(1, 2, 0).numpy()).max() < 1e-3


def test_guided_gamma_is_clamped_for_every_channel_on_the_8bit_path():
    rgb = np.random.default_rng(2).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    small = torch.from_numpy(rgb[::4, ::4]).permute(2, 0, 1)[None].float() / 255
    gamma = (1.5 + 2.0 * log_luma(small)).expand(-1, 3, -1, -1)  # a steep curve: beyond [0, 1] both ways
    gamma_map = GammaMap(eps=1e-4)
    curve = Curve.fit(gamma, small, fraction=0.5)
    out = gamma_map.full_size(curve, rgb)
    assert out.shape == rgb.shape and out.dtype == np.float32
    for channel in range(3):  # each channel clamped to [1e-3, 1]
        assert out[..., channel].max() == 1.0 and out[..., channel].min() == np.float32(1e-3)
    want = guided_gamma(gamma, small, torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255, fraction=0.5)
    assert np.abs(out - want[0].permute(1, 2, 0).numpy()).max() < 1e-4  # the float path's guide
    first = out.copy()
    assert np.array_equal(gamma_map.full_size(curve, rgb), first)  # buffers reused


# gamma


def test_gamma_map_values():
    gamma_map = GammaMap(eps=1e-4)
    x = np.array([[[0, 64, 255]]], dtype=np.uint8)
    gamma = np.array([[[1.0, 0.5, 0.2]]], dtype=np.float32)
    expected = [round(255 * 1e-4), round(255 * (64 / 255) ** 0.5), 255]
    assert gamma_map.apply(x, gamma).tolist() == [[expected]]
    filtered = np.array([[[2.25, 2.75, 3.5]]], dtype=np.float32)  # between levels: not rounded first
    dark = gamma_map.apply(filtered, np.full((1, 1, 3), 0.3, np.float32))
    assert dark.tolist() == [[[round(255 * (v / 255) ** 0.3) for v in (2.25, 2.75, 3.5)]]]


def test_the_8bit_exponent_is_the_float_exponent():
    rgb = _noisy_scene(sigma=3.0)
    small = _tensor(rgb[::8, ::8])
    gamma = 0.3 + 0.6 * torch.rand(1, 3, *small.shape[-2:])
    want = _pixels(apply_gamma(_tensor(rgb), guided_gamma(gamma, small, _tensor(rgb), fraction=0.5)))
    gamma_map = GammaMap(eps=1e-4)
    got = gamma_map.apply(rgb, gamma_map.full_size(Curve.fit(gamma, small, fraction=0.5), rgb))
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


@pytest.mark.parametrize("color_range", [1, 2])
def test_the_planar_exponent_of_grey_is_the_exponent_of_luma(color_range):
    black, span, _ = range_scales(color_range)
    levels = np.linspace(0, 1, 64 * 96).reshape(64, 96).astype(np.float32)
    y = np.round(black + levels * span).astype(np.uint8)
    u = v = np.full((32, 48), 128, np.uint8)
    gamma = torch.full((1, 3, 8, 12), 0.45)
    curve = Curve.fit(gamma, torch.rand(1, 3, 8, 12), fraction=0.0)  # γ itself, bilinear
    out = tuple(np.empty_like(p) for p in (y, u, v))
    PlanarGammaMap(eps=1e-4).apply((y, u, v), curve, out=out, matrix="itu709", color_range=color_range)
    x = np.clip((y.astype(np.float64) - black) / span, 1e-4, 1.0)
    want = np.round(black + x**0.45 * span)
    assert np.abs(out[0] - want).max() <= 1
    assert np.abs(out[1].astype(int) - 128).max() <= 1 and np.abs(out[2].astype(int) - 128).max() <= 1


# histogram


def test_the_8bit_histogram_distance_is_the_float_one():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + 40, 0, 255).astype(np.uint8)
    for x, y in ((a, b), (a, a), (b, a // 3)):
        assert abs(histogram_distance_8bit(x, y) - histogram_distance(_tensor(x), _tensor(y))) < 0.02
    assert histogram_distance_8bit(a, a) == 0.0


# estimator


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
    assert model.ir_version == 8  # what opset 17 needs, not the onnx package's newest (older runtimes refuse that)


# temporal noise reduction


def test_the_8bit_temporal_filter_is_the_float_filter():
    first, second = _noisy_scene(seed=5, sigma=6.0), _noisy_scene(seed=6, sigma=6.0)
    noise = float(noise_level(_tensor(second)).clamp(min=1e-4)) * 255
    cpu, reference = TemporalDenoiser(0.6), TemporalDenoiser(0.6)
    assert cpu.filter_8bit(first, noise=noise) is first  # the first frame starts the history
    reference(_tensor(first))
    got = cpu.filter_8bit(second, noise=noise)
    want = reference(_tensor(second))[0].permute(1, 2, 0).numpy() * 255
    inner = (slice(1, -1), slice(1, -1))  # (the 3×3 mean of the distance: OpenCV mirrors the border, torch shrinks)
    assert np.abs(got - want)[inner].max() < 0.05
    assert np.abs(got - second).max() > 1  # it did filter


# black point


def test_black_level_is_a_fraction_of_the_first_percentile_scaled_by_the_gate():
    small = torch.linspace(0.0, 0.99, 100).view(1, 1, 10, 10).expand(2, 3, 10, 10).contiguous()
    small[1] = small[1] + 0.5  # no black to move: its floor is capped
    level = black_level(small, fraction=0.5)
    assert torch.allclose(level, torch.tensor([0.5 * 0.0099, 0.5 * MAX_BLACK]), atol=1e-4)
    weighted = black_level(small, fraction=0.5, weight=torch.tensor([1.0, 0.0]))
    assert weighted[1] == 0.0 and weighted[0] == level[0]  # a frame the gate leaves alone keeps its blacks


def test_the_toe_presses_levels_under_the_point_and_keeps_the_rest():
    x = torch.tensor([-0.1, 0.0, 0.02, 0.1, 0.2, 0.6, 1.0]).view(1, 1, 1, 7)
    b = 0.1
    want = torch.tensor([0.0, 0.0, 1.01 * 0.02**3 / (0.02**2 + 0.01), 1.01 * 0.5 * 0.1, 1.01 * 0.008 / 0.05])
    got = toe(x, torch.tensor([b]))[0, 0, 0]
    assert torch.allclose(got[:5], want, atol=1e-6)
    assert got[2] < 0.04 * 0.02  # under the point: nearly black
    assert abs(float(got[5]) - 0.6) < b * b / 0.6 and got[6] == 1.0  # above it: close to the level, white kept
    dx = 1e-3  # no steep step anywhere: the slope stays at most 1.25 (a hard clip at b has 1 / (1 - b) ...
    ramp = torch.arange(0.0, 1.0, dx).view(1, 1, 1, -1)  # ... but a jump in slope from 0, and x ** γ after it)
    assert float(toe(ramp, torch.tensor([b])).diff().max()) / dx < 1.25
    assert torch.allclose(toe(x, torch.tensor([0.0]))[0, 0, 0, 1:], x[0, 0, 0, 1:])  # no point: unchanged
    array = x[0, 0].numpy().copy()
    assert np.allclose(toe_array(array, b), got.numpy(), atol=1e-6)


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_the_8bit_exponent_with_levels_is_the_float_exponent_of_the_frame_through_them(gain):
    rgb = (_noisy_scene(sigma=3.0) // 4).astype(np.uint8)  # dark: levels 10-70
    levels = Levels(torch.tensor([12.0 / 255 * gain]), torch.tensor([gain]))
    small = levels(_tensor(rgb[::8, ::8]))
    gamma = 0.3 + 0.6 * torch.rand(1, 3, *small.shape[-2:], generator=torch.Generator().manual_seed(0))
    x = levels(_tensor(rgb))
    want = _pixels(apply_gamma(x, guided_gamma(gamma, small, x, fraction=0.5)))
    gamma_map = GammaMap(eps=1e-4)
    curve = Curve.fit(gamma, small, fraction=0.5, black=float(levels.black), gain=gain)
    got = gamma_map.apply(rgb, gamma_map.full_size(curve, rgb), black=curve.black, gain=curve.gain)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    plain = gamma_map.apply(rgb, gamma_map.full_size(Curve.fit(gamma, small, fraction=0.5, gain=gain), rgb), gain=gain)
    assert got.mean() < plain.mean() - 5  # the point moved: darker than without it


@pytest.mark.parametrize("color_range", [1, 2])
def test_the_planar_exponent_with_levels_is_the_exponent_of_luma_through_them(color_range):
    code_black, span, _ = range_scales(color_range)
    ramp = np.linspace(0, 1, 64 * 96).reshape(64, 96).astype(np.float32)
    y = np.round(code_black + ramp * span).astype(np.uint8)
    u = v = np.full((32, 48), 128, np.uint8)
    gamma = torch.full((1, 3, 8, 12), 0.45)
    planar = PlanarGammaMap(eps=1e-4)
    # a new point, then the first again (its table is kept), then a gain with a point
    for point, gain in ((0.1, 1.0), (0.05, 1.0), (0.1, 1.0), (0.1, 3.0)):
        curve = Curve.fit(gamma, torch.rand(1, 3, 8, 12), fraction=0.0, black=point, gain=gain)
        out = tuple(np.empty_like(p) for p in (y, u, v))
        planar.apply((y, u, v), curve, out=out, matrix="itu709", color_range=color_range)
        x = np.clip((y.astype(np.float64) - code_black) / span * gain, 0.0, 1.0)
        x = np.maximum((1 + point**2) * x**3 / (x**2 + point**2), 1e-4)
        want = np.round(code_black + x**0.45 * span)
        assert np.abs(out[0].astype(np.float64) - want).max() <= 1.0
        assert np.abs(out[1].astype(int) - 128).max() <= 1 and np.abs(out[2].astype(int) - 128).max() <= 1

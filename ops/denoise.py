"""Noise reduction before brightening: a bilateral filter whose strength follows the frame's noise.

Brightening a dark frame multiplies its sensor noise along with the signal; averaging each pixel
with its neighbours of similar colour removes most of that noise while keeping edges whose step
is well above the filter's colour σ. How much to filter depends on how noisy the frame is: a
clean capture filtered as hard as a noisy one loses texture. So :func:`reduce_noise` measures
the noise first (:func:`noise_level`, Immerkær's estimator: the mean absolute response of a
3×3 mask that cancels smooth image structure) and sets the colour σ to ``strength`` times it.

:func:`bilateral_filter` is ``cv2.bilateralFilter`` on a 3-channel image (circular window of
``radius``, colour distance = sum of the absolute channel differences, Gaussian weights in space
and colour, borders mirrored without repeating the edge pixel), written with tensor ops so it
runs on the GPU and in float or 16-bit pipelines. The CPU 8-bit forms beside them
(:func:`noise_level_8bit`, :func:`noise_level_plane`, :func:`denoise_8bit`,
:func:`denoise_planes`) run OpenCV's own filter in float32 (the same result, several times
faster there); the 4:2:0 form filters each plane with a fraction of the RGB filter's colour σ
(:data:`PLANAR_LUMA_SIGMA`, :data:`PLANAR_CHROMA_SIGMA`).

At night the brightening multiplies what one pass leaves: frames the exposure gate counts as
night (:meth:`~sagc.models.gate.ExposureGate.nightness` ``n`` > 0) get a second pass of the
same filter at :data:`NIGHT_PASS` × ``n`` of its colour σ, and their colour — each channel's
difference from the grey — moves by ``n`` towards its Gaussian blur (:data:`NIGHT_CHROMA_SIGMA`,
a 13×13 window: ±2.4 σ, the whole Gaussian; the eye resolves colour more coarsely than luma, and
dark noise is mostly colour). Chosen on CamVid train darkened at night level (seed 1, every 9th
frame, stills through the 8-bit path): PSNR / SSIM 23.97 / 0.662 with one pass, 24.80 / 0.761
with both (second-pass fractions 0.2–0.7 and blurs 1–3.5 px tried in a 5×5 window; 0.2 and
2.5 px best by PSNR, within 0.001 SSIM of the best); the σ 2.5 blur in a window of 5, 9 and 13
pixels (black point 3.5): 25.37 / 0.767, 25.42 / 0.776, 25.43 / 0.777 (σ 2 and 3 in 9, 3.5 in 13
no better by PSNR); frames at 0.2–0.4 of normal light 24.68 / 0.783 with one pass, 25.82 / 0.841
with both; frames brighter than the night range (mean luma above 0.16) get the one pass only.

Reference: J. Immerkær, "Fast noise variance estimation", CVIU 64(2), 1996.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .colour import GREY_WEIGHTS, grey

__all__ = [
    "DEFAULT_STRENGTH",
    "MIN_NOISE_LEVELS",
    "NIGHT_CHROMA_SIGMA",
    "NIGHT_PASS",
    "PLANAR_CHROMA_SIGMA",
    "PLANAR_LUMA_SIGMA",
    "PLANAR_NIGHT_LUMA_SIGMA",
    "RADIUS",
    "SIGMA_SPACE",
    "bilateral_filter",
    "denoise_8bit",
    "denoise_planes",
    "night_filter",
    "noise_level",
    "noise_level_8bit",
    "noise_level_plane",
    "reduce_noise",
    "window_offsets",
]

RADIUS = 2  # a 5×5 window (its 21 pixels within distance 2)
SIGMA_SPACE = 3.0
# the mask and the scale of Immerkær's estimator (on the grey of colour.GREY_WEIGHTS)
NOISE_MASK = ((1.0, -2.0, 1.0), (-2.0, 4.0, -2.0), (1.0, -2.0, 1.0))
NOISE_SCALE = math.sqrt(math.pi / 2.0) / 6.0
# the strength the shipped default weights use (chosen on CamVid train darkened; sagc/weights/default.md)
DEFAULT_STRENGTH = 7.0
_MIN_SIGMA = 1e-4  # in units of x: 0.03 of an 8-bit level
MIN_NOISE_LEVELS = 0.5
"""Frames with less noise than this many 8-bit levels are not filtered: clean footage costs nothing."""
NIGHT_PASS = 0.2
"""The night's second pass: its colour σ as a fraction of the first pass's, at full nightness."""
NIGHT_CHROMA_SIGMA = 2.5
"""Pixels: the σ of the 13×13 Gaussian a night frame's colour moves towards."""
_NIGHT_CHROMA_SIZE = 13  # ±2.4 σ, the whole Gaussian (at chroma resolution 7×7 for σ/2: the same)

# The 4:2:0 form filters each plane on its own, where the RGB filter's range distance sums three
# channels' differences: a luma step moves all three (3× its size), a chroma step about two
# (2.1× under BT.601/709). Its colour sigmas are therefore fractions of the RGB filter's: chroma
# 1/2.1; luma 0.3 by day (about the 1/3 an edge implies), rising with nightness to 0.4 at full
# night, where the RGB filter's distance carries the night's chroma noise too (chosen on CamVid
# train, every 3rd frame, at the default light range and at night level, by PSNR and SSIM
# against the float path: `tools/score_planar.py`; chroma fractions 0.35–0.6 change neither).
PLANAR_LUMA_SIGMA = 0.3
PLANAR_NIGHT_LUMA_SIGMA = 0.4
PLANAR_CHROMA_SIGMA = 0.47


def window_offsets(radius: int, sigma_space: float) -> list[tuple[int, int, float]]:
    """``(dy, dx, weight)`` for every offset of the circular window ``dy² + dx² ≤ radius²``."""
    if radius < 1:
        raise ValueError(f"radius must be at least 1, got {radius}")
    if sigma_space <= 0:
        raise ValueError(f"sigma_space must be positive, got {sigma_space}")
    return [
        (dy, dx, math.exp(-0.5 * (dy * dy + dx * dx) / sigma_space**2))
        for dy in range(-radius, radius + 1)
        for dx in range(-radius, radius + 1)
        if dy * dy + dx * dx <= radius * radius
    ]


def bilateral_filter(
    x: Tensor, *, sigma_color: float | Tensor, sigma_space: float = SIGMA_SPACE, radius: int = RADIUS
) -> Tensor:
    """Bilateral filter of an N×C×H×W float tensor; device and dtype follow ``x``.

    ``sigma_color`` is in the units of ``x`` (e.g. 20/255 for "20 levels" of an image in [0, 1]):
    one number, or a tensor of N (one per image, on ``x``'s device; no host round trip, so a CUDA
    stream keeps running). ``sigma_space`` is in pixels. Half-precision input is filtered in
    float32. Images smaller than the window on either side are returned as is.
    """
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"x must be a float N×C×H×W tensor, got {x.dtype} of shape {list(x.shape)}")
    if isinstance(sigma_color, Tensor):
        sigma = sigma_color.to(device=x.device, dtype=torch.float32).reshape(-1, 1, 1, 1)
        if sigma.shape[0] != x.shape[0]:
            raise ValueError(f"sigma_color has {sigma.shape[0]} values for {x.shape[0]} images")
    elif sigma_color > 0:
        sigma = x.new_full((), float(sigma_color), dtype=torch.float32)  # no host copy: graph-safe
    else:
        raise ValueError(f"sigma_color must be positive, got {sigma_color}")
    offsets = window_offsets(radius, sigma_space)
    height, width = x.shape[-2:]
    if height <= radius or width <= radius:
        return x
    work = x.float()
    padded = F.pad(work, (radius, radius, radius, radius), mode="reflect")
    coefficient = -0.5 / sigma.square()
    total = torch.zeros_like(work)
    norm = torch.zeros_like(work[:, :1])
    for dy, dx, space in offsets:
        neighbour = padded[..., radius + dy : radius + dy + height, radius + dx : radius + dx + width]
        distance = (neighbour - work).abs().sum(1, keepdim=True)
        weight = distance.square_().mul_(coefficient).exp_().mul_(space)
        total.addcmul_(weight, neighbour)
        norm.add_(weight)
    return total.div_(norm).to(x.dtype)


def noise_level(x: Tensor) -> Tensor:
    """Standard deviation of the white noise in each image of an N×3×H×W float batch (shape N).

    Immerkær's estimator on the grey image: ``sqrt(π/2) / 6 · mean |grey ⊛ mask|`` over the valid
    pixels, in the units of ``x`` (float32 for half-precision input). Fine texture reads as a
    little noise too, which is harmless here (it only sets a filter's strength). Images under
    3×3 give 0.
    """
    if x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
        raise ValueError(f"x must be a float N×3×H×W tensor, got {x.dtype} of shape {list(x.shape)}")
    if x.shape[-2] < 3 or x.shape[-1] < 3:
        return x.new_zeros(x.shape[0])
    if x.dtype in (torch.float16, torch.bfloat16):  # a mean over a whole frame wants float32
        x = x.float()
    plane = grey(x)[:, 0]
    # NOISE_MASK is the outer product of (1, -2, 1) with itself: a second difference across the
    # columns, then down the rows (slices only, no constant tensors: CUDA-graph capturable)
    across = plane[..., :-2] - 2.0 * plane[..., 1:-1] + plane[..., 2:]
    response = across[..., :-2, :] - 2.0 * across[..., 1:-1, :] + across[..., 2:, :]
    return response.abs().mean((1, 2)) * NOISE_SCALE


def reduce_noise(
    x: Tensor,
    *,
    strength: float,
    weight: Tensor | None = None,
    night: Tensor | None = None,
    noise: Tensor | None = None,
) -> Tensor:
    """Bilateral filter of each image with colour σ = ``strength`` × its :func:`noise_level`
    (``noise`` where the caller measured it already; × its ``weight``, a tensor of N in [0, 1],
    when given), then, with ``night`` (each image's nightness, a tensor of N in [0, 1]),
    :func:`night_filter`.

    ``strength`` 0 returns ``x``; an image with less than :data:`MIN_NOISE_LEVELS` of noise, or
    one of weight 0, comes back unchanged.
    """
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    if strength == 0:
        return x
    # a clean image gets a σ far below one level: only equal neighbours count, it stays put
    noise = (noise_level(x) if noise is None else noise).float()
    sigma = torch.where(noise < MIN_NOISE_LEVELS / 255.0, 0.0, strength * noise)
    if weight is not None:
        sigma = sigma * weight.to(sigma)
    filtered = bilateral_filter(x, sigma_color=sigma.clamp(min=_MIN_SIGMA))
    if night is None:
        return filtered
    return night_filter(filtered, sigma=sigma, night=night * (sigma > 0).to(sigma))


def _gaussian_taps(size: int, sigma: float) -> list[float]:
    half = size // 2
    taps = [math.exp(-0.5 * (i - half) ** 2 / sigma**2) for i in range(size)]
    return [t / sum(taps) for t in taps]


def _blur(x: Tensor, taps: Sequence[float]) -> Tensor:
    """Separable blur of an N×C×H×W tensor with the odd ``taps`` along both axes, borders
    mirrored without repeating the edge pixel (OpenCV's default); slices only."""
    half = len(taps) // 2
    height, width = x.shape[-2:]
    padded = F.pad(x, (half, half, 0, 0), mode="reflect")
    across = sum(tap * padded[..., i : i + width] for i, tap in enumerate(taps))
    padded = F.pad(across, (0, 0, half, half), mode="reflect")
    return sum(tap * padded[..., i : i + height, :] for i, tap in enumerate(taps))


def night_filter(x: Tensor, *, sigma: Tensor, night: Tensor) -> Tensor:
    """The night's filtering of an N×3×H×W float batch already filtered once with colour σ
    ``sigma`` (shape N, in ``x``'s units): a second bilateral pass at :data:`NIGHT_PASS` ×
    ``night`` of it, then each channel's difference from the grey moved by ``night`` towards
    its Gaussian blur (:data:`NIGHT_CHROMA_SIGMA`). ``night`` (shape N, in [0, 1]) 0 leaves an
    image as it is; device and dtype follow ``x``."""
    night = night.to(device=x.device, dtype=torch.float32).reshape(-1)
    height, width = x.shape[-2:]
    if height < _NIGHT_CHROMA_SIZE or width < _NIGHT_CHROMA_SIZE:
        return x
    second = bilateral_filter(x, sigma_color=(sigma.to(night) * NIGHT_PASS * night).clamp(min=_MIN_SIGMA))
    work = torch.where(night.view(-1, 1, 1, 1) > 0.0, second.float(), x.float())  # night 0: exactly as given
    difference = work - grey(work)
    blurred = _blur(difference, _gaussian_taps(_NIGHT_CHROMA_SIZE, NIGHT_CHROMA_SIGMA))
    out = work + night.view(-1, 1, 1, 1) * (blurred - difference)
    return out.clamp_(0.0, 1.0).to(x.dtype)


_GREY = np.array([GREY_WEIGHTS], dtype=np.float32)
_SECOND_DIFFERENCE = np.array([1.0, -2.0, 1.0], dtype=np.float32)  # NOISE_MASK is its outer product with itself


def noise_level_8bit(rgb: np.ndarray) -> float:
    """:func:`noise_level` of an H×W×3 uint8 image, in 8-bit levels, with OpenCV."""
    return noise_level_plane(cv2.transform(rgb.astype(np.float32, copy=False), _GREY))


def noise_level_plane(plane: np.ndarray) -> float:
    """:func:`noise_level` of one H×W plane (uint8 or float32), in its own code values."""
    if plane.shape[0] < 3 or plane.shape[1] < 3:
        return 0.0
    depth = cv2.CV_16S if plane.dtype == np.uint8 else cv2.CV_32F  # (8-bit: exact in 16 bits, |response| ≤ 4080)
    # the mask is separable: two 3-tap passes (exact in 16 bits; three times as fast as the 3×3 on 8-bit planes)
    response = cv2.sepFilter2D(plane, depth, _SECOND_DIFFERENCE, _SECOND_DIFFERENCE, borderType=cv2.BORDER_REFLECT_101)
    response = response[1:-1, 1:-1]
    return float(cv2.norm(response, cv2.NORM_L1)) / response.size * NOISE_SCALE


def denoise_8bit(rgb: np.ndarray, *, noise: float, strength: float, night: float = 0.0) -> np.ndarray:
    """:func:`reduce_noise` of an H×W×3 frame (uint8, or float32 in 8-bit units) whose noise is
    ``noise`` levels: colour σ = ``strength`` × ``noise``, and :func:`night_filter` at
    nightness ``night``; float32 in 8-bit units (rounding to 8 bits would show once the
    exponent expands it), or ``rgb`` itself where nothing is filtered (``strength`` 0, or less
    than :data:`MIN_NOISE_LEVELS` of noise)."""
    sigma = strength * noise
    if sigma <= 0 or noise < MIN_NOISE_LEVELS:
        return rgb
    out = cv2.bilateralFilter(rgb.astype(np.float32, copy=False), 2 * RADIUS + 1, sigma, SIGMA_SPACE)
    if night <= 0.0:
        return out
    out = cv2.bilateralFilter(out, 2 * RADIUS + 1, sigma * NIGHT_PASS * night, SIGMA_SPACE)
    difference = out - cv2.transform(out, _GREY)[..., None]
    size = (_NIGHT_CHROMA_SIZE, _NIGHT_CHROMA_SIZE)
    blurred = cv2.GaussianBlur(difference, size, NIGHT_CHROMA_SIGMA, borderType=cv2.BORDER_REFLECT_101)
    out += night * (blurred - difference)
    return np.clip(out, 0.0, 255.0, out=out)


def denoise_planes(
    planes: tuple[np.ndarray, ...],
    *,
    noise: float,
    strength: float,
    luma_span: float,
    chroma_span: float,
    night: float = 0.0,
) -> tuple[np.ndarray, ...]:
    """:func:`denoise_8bit` on 4:2:0 planes (Y, U, V; uint8 or float32 code values) whose luma
    noise is ``noise`` code values in a luma range of ``luma_span`` (chroma ``chroma_span``):
    luma with :data:`PLANAR_LUMA_SIGMA` of the RGB filter's colour σ (towards
    :data:`PLANAR_NIGHT_LUMA_SIGMA` with nightness ``night``), chroma with
    :data:`PLANAR_CHROMA_SIGMA` at half the radius and spatial σ; at nightness ``night`` luma's
    second pass and the chroma planes moved towards their blur (:func:`night_filter`; chroma at
    half resolution: a 7×7 window, half the σ). Float32 planes, or ``planes`` themselves where
    nothing is filtered."""
    sigma = strength * noise
    if sigma <= 0 or noise * 255.0 / luma_span < MIN_NOISE_LEVELS:
        return planes
    luma, *chroma = planes
    luma_sigma = sigma * (PLANAR_LUMA_SIGMA + (PLANAR_NIGHT_LUMA_SIGMA - PLANAR_LUMA_SIGMA) * night)
    luma = cv2.bilateralFilter(luma.astype(np.float32, copy=False), 2 * RADIUS + 1, luma_sigma, SIGMA_SPACE)
    chroma = [
        cv2.bilateralFilter(
            plane.astype(np.float32, copy=False),
            RADIUS + 1,
            sigma * PLANAR_CHROMA_SIGMA * chroma_span / luma_span,
            SIGMA_SPACE / 2,
        )
        for plane in chroma
    ]
    if night > 0.0:
        luma = cv2.bilateralFilter(luma, 2 * RADIUS + 1, luma_sigma * NIGHT_PASS * night, SIGMA_SPACE)
        size = (_NIGHT_CHROMA_SIZE // 2 + 1, _NIGHT_CHROMA_SIZE // 2 + 1)
        for plane in chroma:
            blurred = cv2.GaussianBlur(plane, size, NIGHT_CHROMA_SIGMA / 2, borderType=cv2.BORDER_REFLECT_101)
            cv2.addWeighted(plane, 1.0 - night, blurred, night, 0.0, dst=plane)
    return (luma, *chroma)

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
runs on the GPU and in float or 16-bit pipelines. The CPU 8-bit stage calls OpenCV itself
(same result, several times faster there).

Reference: J. Immerkær, "Fast noise variance estimation", CVIU 64(2), 1996.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "DEFAULT_STRENGTH",
    "MIN_NOISE_LEVELS",
    "RADIUS",
    "SIGMA_SPACE",
    "bilateral_filter",
    "noise_level",
    "reduce_noise",
    "window_offsets",
]

RADIUS = 2  # a 5×5 window (its 21 pixels within distance 2)
SIGMA_SPACE = 3.0
# luma weights of OpenCV's RGB2GRAY, the mask and the scale of Immerkær's estimator
GREY_WEIGHTS = (0.299, 0.587, 0.114)
NOISE_MASK = ((1.0, -2.0, 1.0), (-2.0, 4.0, -2.0), (1.0, -2.0, 1.0))
NOISE_SCALE = math.sqrt(math.pi / 2.0) / 6.0
# the strength the shipped default weights use (chosen on Dark-CamVid-train; sagc/weights/default.md)
DEFAULT_STRENGTH = 4.0
_MIN_SIGMA = 1e-4  # in units of x: 0.03 of an 8-bit level
MIN_NOISE_LEVELS = 0.5
"""Frames with less noise than this many 8-bit levels are not filtered: clean footage costs nothing."""


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
    red, green, blue = GREY_WEIGHTS
    grey = red * x[:, 0] + green * x[:, 1] + blue * x[:, 2]
    # NOISE_MASK is the outer product of (1, -2, 1) with itself: a second difference across the
    # columns, then down the rows (slices only, no constant tensors: CUDA-graph capturable)
    across = grey[..., :-2] - 2.0 * grey[..., 1:-1] + grey[..., 2:]
    response = across[..., :-2, :] - 2.0 * across[..., 1:-1, :] + across[..., 2:, :]
    return response.abs().mean((1, 2)) * NOISE_SCALE


def reduce_noise(x: Tensor, *, strength: float, weight: Tensor | None = None) -> Tensor:
    """Bilateral filter of each image with colour σ = ``strength`` × its :func:`noise_level`
    (× its ``weight``, a tensor of N in [0, 1], when given).

    ``strength`` 0 returns ``x``; an image with less than :data:`MIN_NOISE_LEVELS` of noise, or
    one of weight 0, comes back unchanged.
    """
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    if strength == 0:
        return x
    # a clean image gets a σ far below one level: only equal neighbours count, it stays put
    noise = noise_level(x).float()
    sigma = torch.where(noise < MIN_NOISE_LEVELS / 255.0, 0.0, strength * noise)
    if weight is not None:
        sigma = sigma * weight.to(sigma)
    return bilateral_filter(x, sigma_color=sigma.clamp(min=_MIN_SIGMA))

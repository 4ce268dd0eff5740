"""Edge-preserving noise reduction: the bilateral filter, on any device, OpenCV's definition.

Brightening a dark frame multiplies its sensor noise along with the signal; averaging each pixel
with its neighbours of similar colour removes most of that noise while keeping edges whose step
is well above ``sigma_color``. This is the same filter as ``cv2.bilateralFilter`` on a
3-channel image (circular window of ``radius``, colour distance = sum of the absolute channel
differences, Gaussian weights in space and colour, borders mirrored without repeating the edge
pixel), written with tensor ops so it runs on the GPU and in float or 16-bit pipelines. The CPU
8-bit stage calls OpenCV itself (same result, several times faster there).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["RADIUS", "SIGMA_SPACE", "bilateral_filter", "window_offsets"]

RADIUS = 2  # a 5×5 window (its 21 pixels within distance 2)
SIGMA_SPACE = 3.0


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
    x: Tensor, *, sigma_color: float, sigma_space: float = SIGMA_SPACE, radius: int = RADIUS
) -> Tensor:
    """Bilateral filter of an N×C×H×W float tensor; device and dtype follow ``x``.

    ``sigma_color`` is in the units of ``x`` (e.g. 20/255 for "20 levels" of an image in [0, 1]);
    ``sigma_space`` in pixels. Images smaller than the window on either side are returned as is.
    """
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"x must be a float N×C×H×W tensor, got {x.dtype} of shape {list(x.shape)}")
    if sigma_color <= 0:
        raise ValueError(f"sigma_color must be positive, got {sigma_color}")
    offsets = window_offsets(radius, sigma_space)
    height, width = x.shape[-2:]
    if height <= radius or width <= radius:
        return x
    padded = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    coefficient = -0.5 / sigma_color**2
    total = torch.zeros_like(x)
    norm = torch.zeros_like(x[:, :1])
    for dy, dx, space in offsets:
        neighbour = padded[..., radius + dy : radius + dy + height, radius + dx : radius + dx + width]
        distance = (neighbour - x).abs().sum(1, keepdim=True)
        weight = distance.square_().mul_(coefficient).exp_().mul_(space)
        total.addcmul_(weight, neighbour)
        norm.add_(weight)
    return total.div_(norm)

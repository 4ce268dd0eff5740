"""The thumbnail γ is estimated from: ``scale`` × ``scale`` block means, in every form.

:func:`downscale` (tensors, any device) averages blocks from the top-left corner
(``avg_pool2d`` with ``ceil_mode``), so where the size is not a multiple of the scale the last
row and column of blocks average the pixels they hold; a scale that is not a whole number ends
in a bilinear resize to :func:`low_resolution_size`. The 8-bit forms average the same blocks:
:func:`block_means` (``cv2.resize`` with ``INTER_AREA`` alone spreads the cells evenly over the
picture, which moves the thumbnail's content by up to half a block there, and a frame on the
exposure gate's ramp can then be decided differently), :func:`thumbnail_8bit` for RGB frames,
and for 4:2:0 planes :func:`half_luma` and :func:`half_rgb` (RGB at chroma resolution) followed
by :func:`small_rgb`.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch.nn.functional as F
from torch import Tensor

from .colour import ycc_to_rgb

__all__ = [
    "block_means",
    "downscale",
    "half_luma",
    "half_rgb",
    "low_resolution_size",
    "small_rgb",
    "thumbnail_8bit",
    "whole_scale",
]


def whole_scale(scale: float) -> int:
    """``scale`` as a block size when it is a whole number, else 0."""
    return int(scale) if scale == int(scale) else 0


def low_resolution_size(height: int, width: int, *, scale: float) -> tuple[int, int]:
    """The thumbnail's size for an input of ``height`` × ``width``."""
    factor = int(scale)
    if factor == scale:  # whole numbers: integer arithmetic (symbolic sizes stay symbolic)
        return (height + factor - 1) // factor, (width + factor - 1) // factor
    return max(1, int(math.ceil(height / scale))), max(1, int(math.ceil(width / scale)))


def downscale(x: Tensor, *, scale: float) -> Tensor:
    """Area-average an N×C×H×W tensor to :func:`low_resolution_size` (averaging also tames
    sensor noise); device and dtype follow ``x``."""
    size = low_resolution_size(x.shape[-2], x.shape[-1], scale=scale)
    factor = int(scale)
    if factor > 1:  # ceil_mode: exactly low_resolution_size when the scale is a whole number
        x = F.avg_pool2d(x, kernel_size=factor, stride=factor, ceil_mode=True)
    if factor != scale:  # (no size comparison otherwise: exported graphs stay size-free)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x


def block_means(image: np.ndarray, factor: int) -> np.ndarray:
    """``image`` (H×W or H×W×C, uint8 or float32) averaged over ``factor`` × ``factor`` blocks
    from the top-left, the last row and column of blocks over the pixels they hold:
    ceil(H / factor) × ceil(W / factor), the input's dtype (uint8 rounded)."""
    height, width = image.shape[:2]
    if factor <= 1:
        return image
    full_h, full_w = height // factor * factor, width // factor * factor
    rows, cols = -(-height // factor), -(-width // factor)
    out = np.empty((rows, cols, *image.shape[2:]), image.dtype)
    parts = (
        (slice(0, full_h), slice(0, full_w)),
        (slice(full_h, height), slice(0, full_w)),
        (slice(0, full_h), slice(full_w, width)),
        (slice(full_h, height), slice(full_w, width)),
    )
    for part_rows, part_cols in parts:
        block = image[part_rows, part_cols]
        if block.size == 0:
            continue
        cells = (-(-block.shape[1] // factor), -(-block.shape[0] // factor))  # (width, height) in blocks
        first_row, first_col = part_rows.start // factor, part_cols.start // factor
        means = cv2.resize(np.ascontiguousarray(block), cells, interpolation=cv2.INTER_AREA)
        out[first_row : first_row + cells[1], first_col : first_col + cells[0]] = means.reshape(
            cells[1], cells[0], *image.shape[2:]
        )
    return out


def thumbnail_8bit(rgb: np.ndarray, *, scale: float) -> np.ndarray:
    """:func:`downscale` of an H×W×3 uint8 frame: the frame itself at scale 1, the float path's
    blocks at whole scales, else an area resize to :func:`low_resolution_size`."""
    height, width = rgb.shape[:2]
    low_h, low_w = low_resolution_size(height, width, scale=scale)
    if (low_h, low_w) == (height, width):
        return rgb
    factor = whole_scale(scale)
    if factor:
        return block_means(rgb, factor)
    return cv2.resize(rgb, (low_w, low_h), interpolation=cv2.INTER_AREA)


def half_luma(y: np.ndarray) -> np.ndarray:
    """The 2×2 mean of a luma plane (uint8 or float32), float32 and unrounded: luma at chroma
    resolution."""
    half = y.shape[1] // 2, y.shape[0] // 2
    return cv2.resize(y.astype(np.float32, copy=False), half, interpolation=cv2.INTER_AREA)


def half_rgb(
    luma: np.ndarray, u: np.ndarray, v: np.ndarray, *, matrix: str, color_range: int, out: np.ndarray | None = None
) -> np.ndarray:
    """RGB at chroma resolution from :func:`half_luma` and the chroma pair: h/2×w/2×3 float32
    in [0, 1] units, not clipped (colours outside the RGB range keep their excess)."""
    ycc = cv2.merge([luma, u.astype(np.float32, copy=False), v.astype(np.float32, copy=False)], dst=out)
    return cv2.transform(ycc, ycc_to_rgb(matrix, color_range), dst=ycc)


def small_rgb(rgb: np.ndarray, size: tuple[int, int], *, factor: int = 0) -> np.ndarray:
    """The thumbnail of 4:2:0 planes, h×w×3 uint8 RGB at ``size`` (height, width), from
    :func:`half_rgb` (left as it is): clipped to [0, 1] as 8-bit RGB is, then averaged over
    ``factor`` × ``factor`` blocks (:func:`block_means`), or area-resampled to ``size`` when
    ``factor`` is 0. (Averaging the planes before converting would skip that clipping, and
    noisy dark frames, whose chroma noise leaves the RGB range, would come out darker than the
    RGB the estimator learned from.)"""
    clipped = np.clip(rgb, 0.0, 1.0)
    if factor:
        small = block_means(clipped, factor)
    else:
        small = cv2.resize(clipped, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return cv2.convertScaleAbs(small, alpha=255.0)  # rounds

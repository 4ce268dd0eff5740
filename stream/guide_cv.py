"""The guided upsampling's curve (:mod:`sagc.models.guide`) with OpenCV, for the CPU 8-bit paths.

:func:`guide_coefficients_cv` is :func:`sagc.models.guide.guide_coefficients`: the same fit
(window means over windows that shrink at the borders, ridge ``eps``) on H×W×C float32 arrays,
box sums from ``cv2.boxFilter`` with zero borders divided by each window's pixel count; at the
low estimation resolution it costs a few hundred microseconds less than the torch version's
cumulative sums and gathers. :class:`Curve` holds its result for a frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from sagc.models.guide import GUIDE_EPS, guide_radius, log_luma

__all__ = ["Curve", "guide_coefficients_cv"]


def _counts(height: int, width: int, radius: int) -> np.ndarray:
    """Pixels in each pixel's window (clipped to the picture), H×W float32."""
    rows, cols = (
        (np.minimum(np.arange(n) + radius + 1, n) - np.maximum(np.arange(n) - radius, 0)).astype(np.float32)
        for n in (height, width)
    )
    return np.outer(rows, cols)


def _mean(x: np.ndarray, radius: int, counts: np.ndarray) -> np.ndarray:
    size = 2 * radius + 1
    sums = cv2.boxFilter(x, -1, (size, size), normalize=False, borderType=cv2.BORDER_CONSTANT)
    return sums / (counts if x.ndim == 2 else counts[..., None])


def guide_coefficients_cv(
    gamma: np.ndarray, guide: np.ndarray, *, radius: int, eps: float = GUIDE_EPS
) -> tuple[np.ndarray, np.ndarray]:
    """Window-averaged ``a`` and ``b`` (each h×w×C float32) of ``γ ≈ a · guide + b`` for
    ``gamma`` (h×w×C) and ``guide`` (h×w, log luma of the same low-resolution frame)."""
    gamma, guide = gamma.astype(np.float32, copy=False), guide.astype(np.float32, copy=False)
    counts = _counts(guide.shape[0], guide.shape[1], radius)
    mean_i = _mean(guide, radius, counts)[..., None]
    mean_p = _mean(gamma, radius, counts)
    cov = _mean(guide[..., None] * gamma, radius, counts) - mean_i * mean_p
    var = _mean(guide * guide, radius, counts)[..., None] - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return _mean(a, radius, counts), _mean(b, radius, counts)


@dataclass(frozen=True, slots=True)
class Curve:
    """γ at the low resolution as the 8-bit paths bring it to full resolution: per channel
    ``γ = slope · log luma + offset`` (the guided upsampling's window-averaged fit,
    :mod:`sagc.models.guide`), or, with no slope, γ itself (bilinear). Arrays are h×w×3 float32."""

    slope: np.ndarray | None
    offset: np.ndarray

    @classmethod
    def fit(cls, gamma: torch.Tensor, small: torch.Tensor, *, fraction: float) -> Curve:
        """The curve of γ (1×3×h×w) against the log luma of ``small`` (the gain-adjusted
        low-resolution RGB γ was estimated from) in windows of ``fraction`` (0: γ itself)."""
        plane = gamma[0].permute(1, 2, 0).float().contiguous().numpy()
        if fraction <= 0.0:
            return cls(None, plane)
        radius = guide_radius(gamma.shape[-2], gamma.shape[-1], fraction)
        guide = log_luma(small.float())[0, 0].numpy()
        return cls(*guide_coefficients_cv(plane, guide, radius=radius))

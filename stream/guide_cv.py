""":func:`sagc.models.guide.guide_coefficients` with OpenCV, for the CPU 8-bit paths.

The same fit (window means over windows that shrink at the borders, ridge ``eps``) on H×W×C
float32 arrays: box sums from ``cv2.boxFilter`` with zero borders, divided by each window's
pixel count. At the low estimation resolution this costs a few hundred microseconds less than
the torch version's cumulative sums and gathers, once per frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from sagc.models.guide import GUIDE_EPS

__all__ = ["guide_coefficients_cv"]


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

"""Guided upsampling of the γ map: a local tone curve instead of blurred blocks.

γ is estimated at 1/``scale`` resolution, so bilinear upsampling gives every pixel of an 8×8
block nearly the same exponent whatever its own brightness. The estimator's γ falls where the
picture is bright (the inverse of a camera curve), so a pixel brighter or darker than its block
gets the wrong exponent. Here (ours, after He & Sun's guided filter) γ is fitted, in windows of
the low-resolution map, as an affine function of the log luma there::

    γ ≈ a · log Y + b        (per channel, least squares in each window, ridge ``eps``)

and the window-averaged ``a`` and ``b`` are upsampled and applied to the full-resolution log
luma: each pixel gets the exponent of its own brightness on its neighbourhood's curve. A γ map
that is already affine in log luma comes back as it was; where the gate leaves a frame alone
(γ = 1 everywhere) ``a`` = 0 and ``b`` = 1.

The window's radius is a fraction of the low-resolution map's shorter side (so a 360p and a
1080p frame get the same curve locality); window means are computed from cumulative sums (cost
independent of the radius; windows shrink at the borders).

Forms: :func:`guide_coefficients` and :func:`guided_gamma` on tensors (any device);
:func:`guide_coefficients_cv` the same fit on float32 arrays with OpenCV box sums (a few hundred
microseconds less at the estimation size), and :class:`Curve`, its result for one frame as the
CPU 8-bit paths carry it (applied by :class:`sagc.ops.gamma.GammaMap` and
:class:`sagc.ops.gamma.PlanarGammaMap`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .colour import luma

__all__ = [
    "Curve",
    "DEFAULT_GUIDE",
    "GAMMA_FLOOR",
    "GUIDE_EPS",
    "LOG_FLOOR",
    "guide_coefficients",
    "guide_coefficients_cv",
    "guide_radius",
    "guided_gamma",
    "log_luma",
]

DEFAULT_GUIDE = 0.5
"""Window radius / the low-resolution shorter side the default weights use (chosen on Dark-CamVid-train)."""
GUIDE_EPS = 1e-3
"""Ridge on the variance of log luma in a window: flat windows keep their mean γ."""
GAMMA_FLOOR = 1e-3
"""γ is clamped here after the guided upsampling."""
LOG_FLOOR = 1e-3
"""Luma is clamped here before the log (black pixels would otherwise dominate the fit)."""


def log_luma(x: Tensor) -> Tensor:
    """log of the Rec.709 luma (:func:`sagc.ops.colour.luma`) of N×3×H×W RGB in [0, 1], clamped
    at :data:`LOG_FLOOR`: N×1×H×W."""
    return torch.log(luma(x).clamp(min=LOG_FLOOR))


def guide_radius(height: int, width: int, fraction: float) -> int:
    """Window radius in low-resolution pixels for a ``height`` × ``width`` map: ``fraction`` of
    the shorter side, rounded, at least 1. Integer arithmetic on the sizes (to 1/1000 of the
    fraction), so exported graphs keep it symbolic."""
    per_mille = int(round(fraction * 1000))
    return torch.sym_max(1, (torch.sym_min(height, width) * per_mille + 500) // 1000)


def _box_1d(t: Tensor, radius: int, dim: int) -> Tensor:
    n = t.shape[dim]
    shape = [1] * t.dim()
    shape[dim] = 1
    sums = torch.cat([torch.zeros_like(t.narrow(dim, 0, 1)), t.cumsum(dim)], dim=dim)
    index = torch.arange(n, device=t.device)
    high = (index + radius + 1).clamp(max=n)
    low = (index - radius).clamp(min=0)
    shape[dim] = n
    count = (high - low).to(t.dtype).view(shape)
    return (sums.index_select(dim, high) - sums.index_select(dim, low)) / count


def _box(t: Tensor, radius: int) -> Tensor:
    return _box_1d(_box_1d(t, radius, -1), radius, -2)


def guide_coefficients(gamma: Tensor, guide: Tensor, *, radius: int, eps: float = GUIDE_EPS) -> tuple[Tensor, Tensor]:
    """Window-averaged ``a`` and ``b`` (each N×C×h×w, float32) of ``γ ≈ a · guide + b``.

    ``gamma`` is N×C×h×w, ``guide`` N×1×h×w (log luma of the same low-resolution frame). The
    fit runs in float32 whatever the inputs' dtype (half precision cannot hold the sums).
    """
    gamma, guide = gamma.float(), guide.float()
    mean_i = _box(guide, radius)
    mean_p = _box(gamma, radius)
    cov = _box(guide * gamma, radius) - mean_i * mean_p
    var = _box(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return _box(a, radius), _box(b, radius)


def guided_gamma(
    gamma: Tensor, small: Tensor, x: Tensor, *, fraction: float, eps: float = GUIDE_EPS, floor: float = GAMMA_FLOOR
) -> Tensor:
    """γ at ``x``'s resolution from the low-resolution ``gamma`` estimated on ``small``.

    ``x`` is the full-resolution RGB the exponent will be applied to (after noise reduction, so
    the noise does not steer γ); the result has ``x``'s dtype, clamped to [``floor``, 1].
    """
    radius = guide_radius(gamma.shape[-2], gamma.shape[-1], fraction)
    a, b = guide_coefficients(gamma, log_luma(small.float()), radius=radius, eps=eps)
    size = x.shape[-2:]
    a = F.interpolate(a, size=size, mode="bilinear", align_corners=False).to(x.dtype)
    b = F.interpolate(b, size=size, mode="bilinear", align_corners=False).to(x.dtype)
    return torch.clamp(torch.addcmul(b, a, log_luma(x)), floor, 1.0)


def _counts(height: int, width: int, radius: int) -> np.ndarray:
    """Pixels in each pixel's window (clipped to the picture), H×W float32."""
    rows, cols = (
        (np.minimum(np.arange(n) + radius + 1, n) - np.maximum(np.arange(n) - radius, 0)).astype(np.float32)
        for n in (height, width)
    )
    return np.outer(rows, cols)


def _mean_cv(x: np.ndarray, radius: int, counts: np.ndarray) -> np.ndarray:
    size = 2 * radius + 1
    sums = cv2.boxFilter(x, -1, (size, size), normalize=False, borderType=cv2.BORDER_CONSTANT)
    return sums / (counts if x.ndim == 2 else counts[..., None])


def guide_coefficients_cv(
    gamma: np.ndarray, guide: np.ndarray, *, radius: int, eps: float = GUIDE_EPS
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`guide_coefficients` on arrays: window-averaged ``a`` and ``b`` (each h×w×C
    float32) for ``gamma`` (h×w×C) and ``guide`` (h×w, log luma of the same low-resolution
    frame); box sums from ``cv2.boxFilter`` with zero borders divided by each window's count."""
    gamma, guide = gamma.astype(np.float32, copy=False), guide.astype(np.float32, copy=False)
    counts = _counts(guide.shape[0], guide.shape[1], radius)
    mean_i = _mean_cv(guide, radius, counts)[..., None]
    mean_p = _mean_cv(gamma, radius, counts)
    cov = _mean_cv(guide[..., None] * gamma, radius, counts) - mean_i * mean_p
    var = _mean_cv(guide * guide, radius, counts)[..., None] - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return _mean_cv(a, radius, counts), _mean_cv(b, radius, counts)


@dataclass(frozen=True, slots=True)
class Curve:
    """γ at the low resolution as the 8-bit paths bring it to full resolution: per channel
    ``γ = slope · log luma + offset`` (the window-averaged fit), or, with no slope, γ itself
    (bilinear). Arrays are h×w×3 float32. ``gain`` and ``black`` are the frame's levels
    (:class:`~sagc.ops.black.Levels`): the gain-adjusted levels are multiplied by the exposure
    gain (capped at 1) and go through the toe of the black point before the exponent, and
    ``log luma`` and the exponent both see the result."""

    slope: np.ndarray | None
    offset: np.ndarray
    black: float = 0.0
    gain: float = 1.0

    @classmethod
    def fit(cls, gamma: Tensor, small: Tensor, *, fraction: float, black: float = 0.0, gain: float = 1.0) -> Curve:
        """The curve of γ (1×3×h×w) against the log luma of ``small`` (the gain-adjusted
        low-resolution RGB γ was estimated from, already through its levels ``gain`` and
        ``black``) in windows of ``fraction`` (0: γ itself)."""
        plane = gamma[0].permute(1, 2, 0).float().contiguous().numpy()
        if fraction <= 0.0:
            return cls(None, plane, black, gain)
        radius = guide_radius(gamma.shape[-2], gamma.shape[-1], fraction)
        guide = log_luma(small.float())[0, 0].numpy()
        return cls(*guide_coefficients_cv(plane, guide, radius=radius), black, gain)

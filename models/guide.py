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
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sagc.core.colour import luma

__all__ = [
    "DEFAULT_GUIDE",
    "GAMMA_FLOOR",
    "GUIDE_EPS",
    "LOG_FLOOR",
    "guide_coefficients",
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
    """log of the Rec.709 luma (:func:`sagc.eval.metrics.luma`) of N×3×H×W RGB in [0, 1], clamped
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

"""The black point: the level a dark frame's darkest content is taken to be black.

Lifting a dark frame with ``x ** γ`` raises its darkest levels most: the noise floor and the
compression blocks of a night sky come up as a grey veil. A dark frame's black point — a
fraction of the 1st percentile of its low-resolution luma, where the thumbnail's averaging has
already taken the noise out — is moved to 0 before the exponent, and the rest stretched to fill
the range::

    x' = max(0, x − b) / (1 − b),    y = x' ** γ

so the lift brings up detail rather than the floor under it. ``b`` is scaled by the exposure
gate's weight and by how far the frame is into night, as the gate's lift is
(:meth:`~sagc.models.gate.ExposureGate.nightness`): a frame the gate leaves alone, or a dusk
frame it does not lift, keeps its blacks exactly. The same affine step is
part of every form of the exponent (:mod:`sagc.ops.gamma`), next to the run-time gain.
"""

from __future__ import annotations

from torch import Tensor

from .colour import luma
from .exposure import quantiles

__all__ = ["BLACK_QUANTILE", "MAX_BLACK", "black_level", "levels"]

BLACK_QUANTILE = 0.01
MAX_BLACK = 0.25  # a frame whose darkest percent is brighter than this has no black to move


def black_level(small: Tensor, *, fraction: float, weight: Tensor | None = None) -> Tensor:
    """Shape N (float32): ``fraction`` of the :data:`BLACK_QUANTILE` of each low-resolution
    N×3×h×w frame's luma (at most :data:`MAX_BLACK`), times the gate's per-image ``weight``."""
    (floor,) = quantiles(luma(small.float()).flatten(1), (BLACK_QUANTILE,))
    black = fraction * floor.clamp(0.0, MAX_BLACK)
    return black if weight is None else black * weight.float()


def levels(x: Tensor, black: Tensor) -> Tensor:
    """``max(0, x − b) / (1 − b)`` with ``b`` per image (shape N); dtype of ``x``."""
    b = black.to(x.dtype).view(-1, 1, 1, 1)
    return ((x - b) / (1.0 - b)).clamp(0.0, 1.0)

"""The black point: the level a dark frame's darkest content is taken to be black.

Lifting a dark frame with ``x ** γ`` raises its darkest levels most: the noise floor and the
compression blocks of a night sky come up as a grey veil. A dark frame's black point ``b`` — a
fraction of the 1st percentile of its low-resolution luma, where the thumbnail's averaging has
already taken the noise out — sets a toe under which levels are pressed towards 0 before the
exponent::

    x' = toe(x, b) = (1 + b²) · x³ / (x² + b²),    y = x' ** γ

Below ``b`` the toe falls off as ``x³ / b²``, so the floor stays dark; above it the toe tends to
``x − b² / x``, so mid-tones and highlights keep their levels (``toe(1) = 1``). Its slope is 1 at
``b`` and nowhere steep, so the noise around the floor is not stretched as a hard clip at ``b``
would stretch it (a hard clip raises frame-to-frame flicker in video). ``b`` is scaled by the
exposure gate's weight and by how far the frame is into night
(:meth:`~sagc.models.gate.ExposureGate.nightness`): a frame the gate leaves alone, or a dusk
frame, keeps its blacks exactly. :func:`toe` is the tensor form (float path, exported
graphs), :func:`toe_array` the OpenCV form the 8-bit paths of :mod:`sagc.ops.gamma` use.

The exposure gate's gain (:func:`sagc.ops.exposure.exposure_levels`) comes first: a frame's
:class:`Levels` are ``toe(min(1, g · x), g · b)``, the toe of the floor where the gain put it.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
from torch import Tensor

from .colour import luma
from .exposure import quantiles

__all__ = ["BLACK_QUANTILE", "MAX_BLACK", "Levels", "black_level", "toe", "toe_array"]

BLACK_QUANTILE = 0.01
MAX_BLACK = 0.25  # a frame whose darkest percent is brighter than this has no black to move


def black_level(small: Tensor, *, fraction: float, weight: Tensor | None = None) -> Tensor:
    """Shape N (float32): ``fraction`` of the :data:`BLACK_QUANTILE` of each low-resolution
    N×3×h×w frame's luma (at most :data:`MAX_BLACK`), times the gate's per-image ``weight``."""
    (floor,) = quantiles(luma(small.float()).flatten(1), (BLACK_QUANTILE,))
    black = fraction * floor.clamp(0.0, MAX_BLACK)
    return black if weight is None else black * weight.float()


def toe(x: Tensor, black: Tensor, *, gain: Tensor | None = None) -> Tensor:
    """``(1 + b²) · v³ / (v² + b²)`` of ``v = min(1, gain · x)`` (``x`` clamped to [0, 1]), with
    ``b`` and ``gain`` per image (shape N); computed in float32 (half precision would lose the
    cube of the darkest levels), dtype of ``x``."""
    b2 = black.float().view(-1, 1, 1, 1).square()
    v = x.float().clamp(0.0, 1.0)
    if gain is not None:
        v = (v * gain.float().view(-1, 1, 1, 1)).clamp(max=1.0)
    v2 = v * v
    return ((1.0 + b2) * v2 * v / (v2 + b2).clamp(min=1e-12)).to(x.dtype)


def toe_array(x: np.ndarray, black: float, *, scratch: np.ndarray | None = None) -> np.ndarray:
    """:func:`toe` of a float32 array in [0, 1] (any shape OpenCV takes), in place; returns ``x``.
    Below 0 counts as 0. ``scratch``: a float32 buffer of ``x``'s shape to work in (else one is
    allocated)."""
    b2 = black * black
    cv2.max(x, (0.0,) * 4, dst=x)
    square = cv2.multiply(x, x, dst=scratch)
    cv2.multiply(x, square, dst=x, scale=1.0 + b2)
    cv2.add(square, (b2,) * 4, dst=square)
    return cv2.divide(x, square, dst=x)


class Levels(NamedTuple):
    """A frame's levels before the exponent: the exposure ``gain`` (shape N, ≥ 1), then the toe
    of the ``black`` point (shape N, where the gain put the floor)."""

    black: Tensor
    gain: Tensor

    def __call__(self, x: Tensor) -> Tensor:
        """``toe(min(1, gain · x), black)`` of an N×3×H×W image (:func:`toe`)."""
        return toe(x, self.black, gain=self.gain)

"""Temporal smoothing of the low-resolution γ map: an exponential moving average per pixel.

Reset on scene cuts (luma-histogram distance between consecutive thumbnails), and optionally
motion-aware: where the thumbnail changed, the new estimate counts more, so moving objects do
not drag a trail of stale γ behind them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sagc.core.colour import luma

__all__ = ["GammaSmoother", "histogram_distance"]

_BINS = 32


def _histogram(thumbnail: Tensor) -> Tensor:
    values = luma(thumbnail).flatten().float().clamp(0, 1)
    hist = torch.histc(values, bins=_BINS, min=0.0, max=1.0)
    return hist / hist.sum().clamp(min=1)


def histogram_distance(a: Tensor, b: Tensor) -> float:
    """Half the L1 distance between the luma histograms of two thumbnails: 0 same, 1 disjoint."""
    return 0.5 * float((_histogram(a) - _histogram(b)).abs().sum())


class GammaSmoother:
    """Stateful EMA of γ maps: ``state = a·state + (1 − a)·γ``, reset when the scene cuts.

    ``alpha`` is the weight of the past (0 turns smoothing off). With ``motion`` > 0 the weight
    drops per pixel as ``alpha · exp(−|Δ luma| / motion)`` where the thumbnail changed.
    """

    def __init__(self, alpha: float, *, cut_threshold: float = 0.35, motion: float = 0.05) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"smoothing alpha must be in [0, 1), got {alpha}")
        if motion < 0:
            raise ValueError(f"motion scale must be >= 0, got {motion}")
        self.alpha, self.cut_threshold, self.motion = alpha, cut_threshold, motion
        self.cuts = 0
        self.reset()

    def reset(self) -> None:
        """Forget the past (next frame's γ is used as it is)."""
        self._state: Tensor | None = None
        self._thumbnail: Tensor | None = None

    def __call__(self, gamma: Tensor, thumbnail: Tensor) -> Tensor:
        """Smooth ``gamma`` (N×3×h×w) given the low-res input it was estimated from (N×3×h×w)."""
        if self.alpha == 0.0:
            return gamma
        previous, self._thumbnail = self._thumbnail, thumbnail
        if self._state is None or previous is None or self._state.shape != gamma.shape:
            self._state = gamma
            return gamma
        if histogram_distance(previous, thumbnail) > self.cut_threshold:
            self.cuts += 1
            self._state = gamma
            return gamma
        weight: Tensor | float = self.alpha
        if self.motion > 0:
            change = (luma(thumbnail) - luma(previous)).abs()
            weight = self.alpha * torch.exp(-change / self.motion)
        self._state = weight * self._state + (1 - weight) * gamma
        return self._state

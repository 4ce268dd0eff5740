"""Temporal noise reduction for video: a motion-aware recursive filter over full-resolution frames.

A static pixel of a video shows the same scene point in every frame, so averaging it over time
removes noise without blurring anything; a moving one must not be averaged (it would leave a
ghost). Each frame is blended with the filter's previous output::

    out = x + k · (previous − x),    k = strength · clamp((3σ − d) / 2σ, 0, 1)

where ``d`` is the 3×3 mean of the pixel's absolute difference from the previous output
(averaged over the channels) and ``σ`` the frame's noise level (Immerkær's estimator, as the
spatial filter measures it): a pixel whose difference is within the noise (``d`` ≤ σ) keeps
``strength`` of its history, one that differs by more than 3σ (motion, a cut, a light switched
on) keeps none. With ``strength`` ``s`` the noise of a static pixel falls to
``sqrt((1 − s) / (1 + s))`` of its level. ``strength`` is scaled by the exposure gate's weight,
so frames it leaves alone pass through, and 8-bit frames whose noise is below half a level pass
through with the history dropped: clean footage costs nothing.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .colour import ycc_to_rgb_levels
from .denoise import MIN_NOISE_LEVELS, noise_level

__all__ = ["TemporalDenoiser"]

_MEAN = np.full((1, 3), 1.0 / 3.0, np.float32)


class TemporalDenoiser:
    """The filter's state for one stream of frames; :meth:`reset` between unrelated clips."""

    def __init__(self, strength: float) -> None:
        if not 0.0 < strength < 1.0:
            raise ValueError(f"temporal noise reduction strength must be in (0, 1), got {strength}")
        self.strength = strength
        self.reset()

    def reset(self) -> None:
        """Forget the history (the next frame passes through and starts it again)."""
        self._previous: np.ndarray | Tensor | tuple[np.ndarray, ...] | None = None

    def filter_8bit(self, rgb: np.ndarray, *, noise: float, weight: float = 1.0) -> np.ndarray:
        """Filter an H×W×3 uint8 frame whose noise level is ``noise`` 8-bit levels: float32 in
        8-bit units (not rounded: the exponent that follows expands dark levels), or ``rgb``
        itself where it passes through."""
        strength = self.strength * weight
        if strength <= 0.0 or noise < MIN_NOISE_LEVELS:  # clean enough to pass through
            self._previous = None
            return rgb
        x = rgb.astype(np.float32)
        previous = self._previous
        self._previous = x
        if not isinstance(previous, np.ndarray) or previous.shape != x.shape:
            return rgb
        history = cv2.subtract(previous, x)
        distance = cv2.blur(cv2.transform(cv2.absdiff(previous, x), _MEAN), (3, 3))
        keep = np.clip(distance * (-0.5 / noise) + 1.5, 0.0, 1.0) * strength
        out = x + keep[..., None] * history  # a blend of two 8-bit values: in range
        self._previous = out
        return out

    def filter_planes(
        self,
        planes: tuple[np.ndarray, np.ndarray, np.ndarray],
        *,
        noise: float,
        matrix: str,
        color_range: int,
        weight: float = 1.0,
    ) -> tuple[np.ndarray, ...]:
        """Filter 8-bit 4:2:0 planes (Y, U, V as uint8, ``matrix`` and ``color_range`` as in
        :class:`~sagc.stream.media.frame.YuvPlanes`) whose noise is ``noise`` 8-bit RGB levels.

        The distance is :meth:`filter_8bit`'s, the mean RGB difference, measured where chroma
        is: the luma difference area-averaged to chroma's size makes RGB differences with the
        chroma differences, and its 3×3 mean there spans 6×6 full-resolution pixels. Averaging
        four luma differences halves their noise, so a still pixel reads a little stiller than
        in :meth:`filter_8bit`; motion reads the same. The weight is brought back to full
        resolution for luma. Returns float32 planes, or ``planes`` themselves where they pass
        through."""
        strength = self.strength * weight
        if strength <= 0.0 or noise < MIN_NOISE_LEVELS:
            self._previous = None
            return planes
        current = tuple(plane.astype(np.float32) for plane in planes)
        previous = self._previous
        self._previous = current
        if not isinstance(previous, tuple) or any(p.shape != c.shape for p, c in zip(previous, current, strict=True)):
            return planes
        history = [cv2.subtract(before, x) for before, x in zip(previous, current, strict=True)]
        half = history[1].shape[1], history[1].shape[0]
        luma_half = cv2.resize(history[0], half, interpolation=cv2.INTER_AREA)
        difference = cv2.transform(cv2.merge([luma_half, *history[1:]]), ycc_to_rgb_levels(matrix, color_range))
        distance = cv2.blur(cv2.transform(np.abs(difference, out=difference), _MEAN), (3, 3))
        # keep = strength · clamp(1.5 − d / 2σ, 0, 1), in place
        keep_half = np.clip(
            cv2.addWeighted(distance, -0.5 * strength / noise, distance, 0.0, 1.5 * strength, dst=distance),
            0.0,
            strength,
            out=distance,
        )
        full = history[0].shape[1], history[0].shape[0]
        keeps = (cv2.resize(keep_half, full, interpolation=cv2.INTER_LINEAR), keep_half)
        out = tuple(
            cv2.add(x, cv2.multiply(keeps[min(i, 1)], h, dst=h), dst=h)
            for i, (x, h) in enumerate(zip(current, history, strict=True))
        )
        self._previous = out
        return out

    def __call__(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        """Filter an N×3×H×W float batch in [0, 1] (one stream of frames: N is normally 1);
        device and dtype follow ``x``."""
        noise = noise_level(x).clamp(min=1e-4).view(-1, 1, 1, 1)
        strength = torch.full_like(noise, self.strength)
        if weight is not None:
            strength = strength * weight.to(strength).view(-1, 1, 1, 1)
        previous = self._previous
        work = x.float()
        self._previous = work
        if not isinstance(previous, Tensor) or previous.shape != work.shape or previous.device != work.device:
            return x
        history = previous - work
        distance = F.avg_pool2d(history.abs().mean(1, keepdim=True), 3, stride=1, padding=1, count_include_pad=False)
        keep = ((1.5 - distance * (0.5 / noise)).clamp(0.0, 1.0) * strength).to(work)
        out = work + keep * history
        self._previous = out
        return out.to(x.dtype)

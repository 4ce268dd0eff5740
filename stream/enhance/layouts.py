"""The forms of the CPU stage's steps for each pixel layout it enhances in 8 bits.

:class:`~sagc.stream.enhance.cpu_stage.CpuStage` runs one step sequence (thumbnail → estimate →
temporal noise reduction → noise reduction → γ at full resolution → exponent); a layout says
which form of each :mod:`sagc.ops` algorithm a step calls: :class:`RgbLayout` for H×W×3 uint8
frames, :class:`PlanarLayout` for 8-bit 4:2:0 planes, where the noise is measured on luma, the
filters run per plane and nothing at full resolution is converted to RGB.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import numpy as np

from sagc.core.timing import StepTimer, step
from sagc.ops.colour import range_scales
from sagc.ops.denoise import denoise_8bit, denoise_planes, noise_level_8bit, noise_level_plane
from sagc.ops.downscale import half_luma, half_rgb, low_resolution_size, small_rgb, thumbnail_8bit, whole_scale
from sagc.ops.gamma import GammaMap, PlanarGammaMap
from sagc.ops.guide import Curve
from sagc.ops.temporal_denoise import TemporalDenoiser
from sagc.stream.media.frame import YuvPlanes

__all__ = ["Layout", "PlanarLayout", "RgbLayout"]

Pixels = TypeVar("Pixels")


class Layout(Generic[Pixels]):
    """The step forms for one layout; ``Pixels`` is what a frame holds in it, ``filtered`` the
    same after noise reduction (uint8 or float32 code values)."""

    def thumbnail(self, pixels: Pixels, *, scale: float) -> np.ndarray:
        """The h×w×3 uint8 RGB thumbnail γ is estimated from (the frame itself where it is that small)."""
        raise NotImplementedError

    def noise(self, pixels: Pixels | tuple[np.ndarray, ...] | np.ndarray) -> float:
        """The frame's noise in its own code values."""
        raise NotImplementedError

    def levels(self, noise: float) -> float:
        """``noise`` in 8-bit RGB levels."""
        return noise

    def temporal(self, denoiser: TemporalDenoiser, pixels: Pixels, *, levels: float, weight: float) -> object:
        """The temporal noise reduction's form (``pixels`` themselves where they pass through)."""
        raise NotImplementedError

    def denoise(self, filtered: object, *, noise: float, strength: float, night: float = 0.0) -> object:
        """The bilateral noise reduction's form (``filtered`` itself where nothing is filtered)."""
        raise NotImplementedError

    def apply(self, pixels: Pixels, filtered: object, curve: Curve, *, timer: StepTimer | None) -> Pixels:
        """γ at full resolution from ``curve`` and the exponent, timed as ``upsample`` and ``apply``."""
        raise NotImplementedError


class RgbLayout(Layout[np.ndarray]):
    """H×W×3 uint8 RGB frames."""

    def __init__(self, *, gain: float, eps: float) -> None:
        self.map = GammaMap(gain=gain, eps=eps)

    def thumbnail(self, pixels: np.ndarray, *, scale: float) -> np.ndarray:
        return thumbnail_8bit(pixels, scale=scale)

    def noise(self, pixels: np.ndarray) -> float:
        return noise_level_8bit(pixels)

    def temporal(self, denoiser: TemporalDenoiser, pixels: np.ndarray, *, levels: float, weight: float) -> np.ndarray:
        return denoiser.filter_8bit(pixels, noise=levels, weight=weight)

    def denoise(self, filtered: np.ndarray, *, noise: float, strength: float, night: float = 0.0) -> np.ndarray:
        return denoise_8bit(filtered, noise=noise, strength=strength, night=night)

    def apply(self, pixels: np.ndarray, filtered: np.ndarray, curve: Curve, *, timer: StepTimer | None) -> np.ndarray:
        with step(timer, "upsample"):
            gamma = self.map.full_size(curve, filtered)
        with step(timer, "apply"):
            return self.map.apply(filtered, gamma, black=curve.black, gain=curve.gain)


class PlanarLayout(Layout[YuvPlanes]):
    """8-bit 4:2:0 planes; luma and RGB at chroma resolution, made for the thumbnail, are kept
    for the exponent when nothing filters the planes."""

    def __init__(self, *, gain: float, eps: float) -> None:
        self.map = PlanarGammaMap(gain=gain, eps=eps)
        self._halves: tuple[np.ndarray, np.ndarray] | None = None
        self._spans = range_scales(1)

    def thumbnail(self, pixels: YuvPlanes, *, scale: float) -> np.ndarray:
        y, u, v = pixels.split()
        self._spans = range_scales(pixels.color_range)
        luma = half_luma(y)
        rgb = half_rgb(luma, u, v, matrix=pixels.matrix, color_range=pixels.color_range)
        self._halves = luma, rgb
        factor = whole_scale(scale)
        half_factor = factor // 2 if factor % 2 == 0 else 0  # blocks at chroma resolution, where whole
        return small_rgb(rgb, low_resolution_size(pixels.height, pixels.width, scale=scale), factor=half_factor)

    def noise(self, pixels: YuvPlanes | tuple[np.ndarray, ...]) -> float:
        luma = pixels.split()[0] if isinstance(pixels, YuvPlanes) else pixels[0]
        return noise_level_plane(luma)

    def levels(self, noise: float) -> float:
        return noise * 255.0 / self._spans[1]

    def temporal(
        self, denoiser: TemporalDenoiser, pixels: YuvPlanes, *, levels: float, weight: float
    ) -> tuple[np.ndarray, ...]:
        planes = pixels.split()
        out = denoiser.filter_planes(
            planes, noise=levels, matrix=pixels.matrix, color_range=pixels.color_range, weight=weight
        )
        return pixels if out is planes else out

    def denoise(
        self, filtered: YuvPlanes | tuple[np.ndarray, ...], *, noise: float, strength: float, night: float = 0.0
    ) -> object:
        planes = filtered.split() if isinstance(filtered, YuvPlanes) else filtered
        _, luma_span, chroma_span = self._spans
        out = denoise_planes(
            planes, noise=noise, strength=strength, luma_span=luma_span, chroma_span=chroma_span, night=night
        )
        return filtered if out is planes else out

    def apply(
        self, pixels: YuvPlanes, filtered: YuvPlanes | tuple[np.ndarray, ...], curve: Curve, *, timer: StepTimer | None
    ) -> YuvPlanes:
        halves, self._halves = self._halves, None
        if filtered is pixels:
            planes = pixels.split()
            luma_half, rgb_half = halves if halves is not None else (None, None)
        else:  # filtered: its luma and RGB at chroma resolution are made afresh
            planes, luma_half, rgb_half = filtered, None, None
        out = YuvPlanes.empty_like(pixels)
        self.map.apply(
            planes,
            curve,
            out=out.split(),
            matrix=pixels.matrix,
            color_range=pixels.color_range,
            luma_half=luma_half,
            rgb_half=rgb_half,
            timer=timer,
        )
        return out

"""The CPU enhance stage: 8-bit frames with OpenCV in float32 buffers, others through the enhancer in floating point."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from sagc.core.colour import LUMA_WEIGHTS
from sagc.models import Enhancer, RuntimeSettings
from sagc.models.denoise import GREY_WEIGHTS, MIN_NOISE_LEVELS, NOISE_MASK, NOISE_SCALE, RADIUS, SIGMA_SPACE
from sagc.models.guide import GAMMA_FLOOR, LOG_FLOOR

from .frame import Frame, YuvPlanes, frame_to_tensor, tensor_to_pixels
from .guide_cv import Curve
from .ort_estimator import OrtEstimator
from .planar import PlanarGammaMap, half_luma, half_rgb, range_scales, small_rgb
from .smoothing import HISTOGRAM_BINS
from .stage import Done, Stage
from .thumbnail import block_means
from .timing import step

__all__ = [
    "PLANAR_CHROMA_SIGMA",
    "PLANAR_LUMA_SIGMA",
    "REUSE_CHANGE",
    "REUSE_FRAMES",
    "REUSE_HISTOGRAM",
    "REUSE_MEAN",
    "REUSE_MEAN_FLOOR",
    "REUSE_MOVING_FRAMES",
    "REUSE_NOISE",
    "CpuStage",
    "GammaMap",
    "histogram_distance_8bit",
    "noise_level_8bit",
    "noise_level_plane",
]

# Video frames reuse the last estimate while the light holds (the thumbnail's mean within
# REUSE_MEAN of the estimated one's, relative, plus REUSE_MEAN_FLOOR levels for the noise: a
# fade or a light switched on re-estimates at once) and either the picture stays put (no 3×3
# neighbourhood of the 1/8-scale thumbnail changed by more than REUSE_CHANGE levels plus
# REUSE_NOISE × the measured noise, what noise alone moves such a mean by, with margin) for at
# most REUSE_FRAMES frames, or it moves within the same light (luma histogram within
# REUSE_HISTOGRAM: half the L1 distance, the scene-cut test's measure, where a cut is over 0.35)
# for at most REUSE_MOVING_FRAMES frames: γ's curve follows each frame's own luma, so it carries
# over. The exposure tracker counts the frames that held an estimate. Chosen on darkened CamVid
# train frames (10 images, 4:2:0): 40-frame pans at dusk and night level estimated 74 and 64 %
# of their frames, PSNR/SSIM −0.008 dB/−0.0007 and −0.004 dB/−0.0003 against estimating every
# frame; 60-frame pans through a fade (light ×0.6 in 60 frames) kept the flicker of estimating
# every frame (0.962 against 0.948; 1.918 without the light test).
REUSE_MEAN = 0.005
REUSE_MEAN_FLOOR = 0.02
REUSE_CHANGE = 1.5
REUSE_NOISE = 0.5
REUSE_FRAMES = 15
REUSE_HISTOGRAM = 0.1
REUSE_MOVING_FRAMES = 2

# The 4:2:0 path filters each plane on its own, where the RGB filter's range distance sums three
# channels' differences: a luma step moves all three (3× its size), a chroma step about two
# (2.1× under BT.601/709). Its colour sigmas are therefore fractions of the RGB filter's: chroma
# 1/2.1, luma 0.4 (between the 1/3 an edge implies and the 1/2 noise favours; chosen on CamVid
# train at dusk and night level by PSNR and SSIM against the RGB path).
PLANAR_LUMA_SIGMA = 0.4
PLANAR_CHROMA_SIGMA = 0.47

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_HEAP_LIMIT = 32 * 1024 * 1024  # glibc's largest allowed mmap threshold on 64-bit


@functools.cache
def keep_frame_buffers_in_heap() -> bool:
    """Stop glibc from returning every frame-sized buffer to the kernel after use.

    By default each multi-megabyte tensor is its own mmap, so every frame pays thousands of
    page faults (on 2 cores that was ~40% of the time for 720p). Raising the mmap and trim
    thresholds lets freed frame buffers be reused from the heap instead.
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _HEAP_LIMIT) and libc.mallopt(_M_TRIM_THRESHOLD, 4 * _HEAP_LIMIT)
    except (OSError, AttributeError):
        return False
    log.debug("mallopt thresholds raised: %s", bool(ok))
    return bool(ok)


_GREY = np.array([GREY_WEIGHTS], dtype=np.float32)
_LUMA = np.array([LUMA_WEIGHTS], dtype=np.float32)
_MASK = np.array(NOISE_MASK, dtype=np.float32)


def noise_level_8bit(rgb: np.ndarray) -> float:
    """:func:`sagc.models.denoise.noise_level` of an H×W×3 uint8 image, in 8-bit levels, with OpenCV."""
    return noise_level_plane(cv2.transform(rgb.astype(np.float32), _GREY))


def noise_level_plane(plane: np.ndarray) -> float:
    """:func:`sagc.models.denoise.noise_level` of one H×W plane, in its own code values."""
    if plane.shape[0] < 3 or plane.shape[1] < 3:
        return 0.0
    depth = cv2.CV_16S if plane.dtype == np.uint8 else cv2.CV_32F  # (8-bit: exact in 16 bits, |response| ≤ 4080)
    response = cv2.filter2D(plane, depth, _MASK, borderType=cv2.BORDER_REFLECT_101)
    response = response[1:-1, 1:-1]
    return float(cv2.norm(response, cv2.NORM_L1)) / response.size * NOISE_SCALE


class GammaMap:
    """``x ** γ`` for 8-bit frames with OpenCV, in buffers kept between frames of one size.

    γ comes to full resolution as float32 (guided by the frame's own log luma, or bilinear),
    and the exponent is ``exp(γ · log(max(x · gain / 255, eps)))`` in float32, rounded once at
    the end: the same arithmetic as the float path, and nothing quantised before the exponent
    expands dark levels (a filtered frame arrives as float32 in 8-bit units). OpenCV's
    vectorised log and exp cost less per pixel than a table gather.
    """

    def __init__(self, *, gain: float = 1.0, eps: float, floor: float = GAMMA_FLOOR) -> None:
        self.gain = gain
        self.eps = eps
        self.floor = floor  # γ's lower clamp (as models.guide.guided_gamma)
        self._scratch: dict[str, np.ndarray] | None = None

    def full_size(self, curve: Curve, x: np.ndarray) -> np.ndarray:
        """γ at ``x``'s size (H×W×3 float32), clamped to [floor, 1]: the curve's coefficients
        upsampled and applied to ``x``'s own log luma (:func:`sagc.models.guide.guided_gamma`),
        or γ bilinearly where the curve has no slope. The result is a buffer the next call reuses."""
        height, width = x.shape[:2]
        buffers = self._buffers(height, width)
        offset = self._full_size(curve.offset, buffers["offset"])
        if curve.slope is None:
            return self._clamped(offset)
        slope = self._full_size(curve.slope, buffers["slope"])
        luma, luma3 = buffers["luma"], buffers["luma3"]
        cv2.transform(self._scaled(x), _LUMA, dst=luma)
        cv2.log(cv2.max(luma, LOG_FLOOR, dst=luma), dst=luma)
        cv2.merge([luma, luma, luma], dst=luma3)
        out = cv2.add(cv2.multiply(slope, luma3, dst=slope), offset, dst=slope)
        return self._clamped(out)

    def apply(self, x: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        """``x`` (H×W×3 uint8, or float32 in 8-bit units) to the power of ``gamma`` (H×W×3
        float32): H×W×3 uint8."""
        work = self._scaled(x)
        cv2.max(work, (self.eps,) * 4, dst=work)
        cv2.log(work, dst=work)
        cv2.multiply(work, gamma, dst=work)
        cv2.exp(work, dst=work)
        return cv2.convertScaleAbs(work, alpha=255.0)  # rounds, saturates at 255

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        """``min(x · gain / 255, 1)`` in the frame-sized work buffer."""
        work = self._buffers(*x.shape[:2])["work"]
        np.multiply(x, np.float32(self.gain / 255.0), out=work, dtype=np.float32)
        if self.gain > 1.0:
            cv2.min(work, (1.0,) * 4, dst=work)
        return work

    def _clamped(self, gamma: np.ndarray) -> np.ndarray:
        cv2.max(gamma, (self.floor,) * 4, dst=gamma)  # (a plain number would clamp the first channel only)
        return cv2.min(gamma, (1.0,) * 4, dst=gamma)

    def _buffers(self, height: int, width: int) -> dict[str, np.ndarray]:
        if self._scratch is None or self._scratch["work"].shape[:2] != (height, width):
            planes = {"work": 3, "slope": 3, "offset": 3, "luma3": 3, "luma": 1}
            self._scratch = {
                name: np.empty((height, width, channels) if channels > 1 else (height, width), np.float32)
                for name, channels in planes.items()
            }
        return self._scratch

    @staticmethod
    def _full_size(plane: np.ndarray, out: np.ndarray) -> np.ndarray:
        if plane.shape == out.shape:
            np.copyto(out, plane)
            return out
        return cv2.resize(plane, (out.shape[1], out.shape[0]), dst=out, interpolation=cv2.INTER_LINEAR)


class CpuStage(Stage):
    """The :class:`~sagc.stream.stage.Stage` on the CPU; one frame at a time, finished on submit.

    8-bit frames take the fast path: γ is estimated (on ONNX Runtime) from a thumbnail averaged
    over the float path's blocks, brought to full resolution and applied with OpenCV in float32
    buffers kept between frames, by a :class:`GammaMap` on RGB or a
    :class:`~sagc.stream.planar.PlanarGammaMap` on 4:2:0 planes; a frame the exposure gate
    leaves alone is returned as it is after the estimate; the noise reduction runs there in
    float32 (the noise estimate and filter ``models.denoise`` defines). In video a frame reuses
    the last estimate while the light holds (:data:`REUSE_MEAN` and the rules beside it).
    Everything else (16-bit, another device, ``fast=False``) runs the
    :class:`~sagc.models.Enhancer` in floating point.
    """

    def __init__(
        self,
        enhancer: Enhancer,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        fast: bool = True,
        settings: RuntimeSettings | None = None,
    ) -> None:
        keep_frame_buffers_in_heap()
        super().__init__(enhancer, device=torch.device(device), dtype=dtype)
        self.fast = fast and self.device.type == "cpu"
        self.planar = self.fast  # 8-bit 4:2:0 frames are enhanced in their planes
        self.gamma_map: GammaMap | None = None
        self.planar_map: PlanarGammaMap | None = None
        # the 8-bit paths run the network on ONNX Runtime (the float path keeps the module)
        self._runtime = OrtEstimator(self.enhancer.estimator, threads=torch.get_num_threads()) if self.fast else None
        self._last: _Estimate | None = None  # video: the last estimate, for frames that barely change
        self._noise = 0.0  # the last frame's measured noise, 8-bit levels
        self.configure(settings or enhancer.settings)

    def reset(self) -> None:
        super().reset()
        self._last, self._noise = None, 0.0

    def _configured(self, settings: RuntimeSettings) -> None:
        self._last = None  # γ depends on the settings
        if self.fast and (self.gamma_map is None or self.gamma_map.gain != settings.gain):
            self.gamma_map = GammaMap(gain=settings.gain, eps=self.enhancer.eps)
            self.planar_map = PlanarGammaMap(gain=settings.gain, eps=self.enhancer.eps)

    def submit(self, frame: Frame) -> Done:
        return Done(self._enhance(frame))

    @torch.inference_mode()
    def _enhance(self, frame: Frame) -> Frame:
        if self.gamma_map is not None and frame.planes is not None:
            return frame.with_planes(self._fast_planar(frame.planes))
        if self.gamma_map is not None and frame.eight_bit:
            return frame.with_pixels(self._fast(frame.rgb))
        x = frame_to_tensor(frame, device=self.device, dtype=self.dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        y = self.enhancer(x, **self.video_state.hooks())
        return frame.with_pixels(tensor_to_pixels(y, dtype=frame.rgb.dtype))

    def _block(self) -> int:
        """The estimate's scale when it is a whole number (blocks averaged as the float path
        does), else 0."""
        scale = self.enhancer.scale
        return int(scale) if scale == int(scale) else 0

    def _gamma(self, small: torch.Tensor, *, frames: int = 1) -> tuple[torch.Tensor, float]:
        """γ (the exposure decision and γ smoothed over time where the stage keeps that state,
        ``frames`` after the last estimate) and the gate's weight (1 without one)."""
        exposure = self.exposure
        if exposure is not None and frames > 1:
            exposure = functools.partial(exposure, frames=frames)
        gamma, weight = self.enhancer.gamma(small, exposure=exposure, estimator=self._runtime)
        if self.smoother is not None:
            gamma = self.smoother(gamma, small, frames=frames)
        return gamma, 1.0 if weight is None else float(weight)

    def _estimate(self, small: np.ndarray, *, full_size: bool) -> tuple[Curve, float] | None:
        """γ's :class:`~sagc.stream.guide_cv.Curve` and the gate's weight for an h×w×3 uint8
        low-resolution RGB frame (``full_size``: the frame itself); None when the gate leaves
        the frame alone (γ = 1, no filtering: nothing to do at full resolution). In video a
        frame that barely differs from the last estimated one reuses its curve."""
        last = self._reusable(small)
        if last is None:
            x = torch.from_numpy(small).permute(2, 0, 1).unsqueeze(0).to(self.dtype).div_(255.0)
            x = self.enhancer.prepare(x.contiguous(memory_format=torch.channels_last))
            frames = 1 if self._last is None else 1 + self._last.age  # since the last estimate
            with step(self.timer, "estimate"):
                gamma, weight = self._gamma(x, frames=frames)
                alone = weight == 0.0 and self.settings.gain == 1.0 and bool((gamma >= 1.0).all())
                curve = None if alone else Curve.fit(gamma, x, fraction=self.settings.guide)
            last = _Estimate(small.copy() if full_size else small, curve, weight)
            if self.video_state.active:  # video: later frames that barely change may reuse it
                self._last = last
        if last.curve is None:
            if self.temporal_denoiser is not None:
                self.temporal_denoiser.reset()
            return None
        return last.curve, last.weight

    def _fast(self, rgb: np.ndarray) -> np.ndarray:
        gamma_map, settings, timer = self.gamma_map, self.settings, self.timer
        assert gamma_map is not None
        height, width = rgb.shape[:2]
        low_h, low_w = self.enhancer.low_resolution_size(height, width)
        same = (low_h, low_w) == (height, width)
        with step(timer, "downscale"):
            factor = self._block()
            if same:
                small = rgb
            elif factor:  # the float path's blocks
                small = block_means(rgb, factor)
            else:
                small = cv2.resize(rgb, (low_w, low_h), interpolation=cv2.INTER_AREA)
        estimate = self._estimate(small, full_size=same)
        if estimate is None:
            return rgb
        curve, weight = estimate
        noise = None  # the frame's noise in 8-bit levels, measured once for both filters
        if self.temporal_denoiser is not None:
            with step(timer, "temporal noise reduction"):
                noise = self._noise = noise_level_8bit(rgb)
                filtered = self.temporal_denoiser.filter_8bit(rgb, noise=noise, weight=weight)
                rgb, noise = filtered, noise if filtered is rgb else None
        if settings.denoise:
            with step(timer, "noise reduction"):
                noise = self._noise = noise_level_8bit(rgb) if noise is None else noise
                sigma = weight * settings.denoise * noise
                if sigma > 0 and noise >= MIN_NOISE_LEVELS:  # (models.denoise.reduce_noise's rule)
                    # in float32: rounding the filtered frame to 8 bits would show once the exponent expands it
                    rgb = cv2.bilateralFilter(rgb.astype(np.float32), 2 * RADIUS + 1, sigma, SIGMA_SPACE)
        with step(timer, "upsample"):
            gamma_full = gamma_map.full_size(curve, rgb)
        with step(timer, "apply"):
            return gamma_map.apply(rgb, gamma_full)

    def _fast_planar(self, planes: YuvPlanes) -> YuvPlanes:
        """:meth:`_fast` on 4:2:0 planes (:mod:`sagc.stream.planar`): the noise is measured on
        luma, the filters run per plane, and nothing at full resolution is converted to RGB."""
        settings, timer, planar_map = self.settings, self.timer, self.planar_map
        assert planar_map is not None
        y, u, v = planes.split()
        _, luma_span, chroma_span = range_scales(planes.color_range)
        low = self.enhancer.low_resolution_size(planes.height, planes.width)
        with step(timer, "downscale"):
            luma_half = half_luma(y)
            rgb_half = half_rgb(luma_half, u, v, matrix=planes.matrix, color_range=planes.color_range)
            factor = self._block()
            half_factor = factor // 2 if factor % 2 == 0 else 0  # blocks at chroma resolution, where whole
            small = small_rgb(rgb_half, low, factor=half_factor)
        estimate = self._estimate(small, full_size=False)
        if estimate is None:
            return planes
        curve, weight = estimate
        filtered: tuple[np.ndarray, ...] = (y, u, v)
        noise = None  # luma noise in code values, measured once for both filters
        if self.temporal_denoiser is not None:
            with step(timer, "temporal noise reduction"):
                noise = noise_level_plane(y)
                self._noise = noise * 255.0 / luma_span
                filtered = self.temporal_denoiser.filter_planes(
                    filtered, noise=self._noise, matrix=planes.matrix, color_range=planes.color_range, weight=weight
                )
                noise = noise if filtered[0] is y else None
        if settings.denoise:
            with step(timer, "noise reduction"):
                noise = noise_level_plane(filtered[0]) if noise is None else noise
                self._noise = noise * 255.0 / luma_span
                sigma = weight * settings.denoise * noise
                if sigma > 0 and self._noise >= MIN_NOISE_LEVELS:
                    filtered = (
                        cv2.bilateralFilter(
                            filtered[0].astype(np.float32), 2 * RADIUS + 1, sigma * PLANAR_LUMA_SIGMA, SIGMA_SPACE
                        ),
                        *(
                            cv2.bilateralFilter(
                                plane.astype(np.float32),
                                RADIUS + 1,
                                sigma * PLANAR_CHROMA_SIGMA * chroma_span / luma_span,
                                SIGMA_SPACE / 2,
                            )
                            for plane in filtered[1:]
                        ),
                    )
        if filtered[0] is not y:  # filtered: its luma and RGB at chroma resolution are made afresh
            luma_half = rgb_half = None
        return planar_map.apply(planes, filtered, curve, luma_half=luma_half, rgb_half=rgb_half, timer=timer)

    def estimator_runner(self, x: torch.Tensor) -> Callable[[], object]:
        if self._runtime is None:
            return super().estimator_runner(x)
        return lambda: self._runtime(x)  # type: ignore[misc]

    def _reusable(self, small: np.ndarray) -> _Estimate | None:
        """The last estimate, when this low-resolution frame may reuse it (video only): the same
        light (mean within :data:`REUSE_MEAN`) and either the same picture (no 3×3 neighbourhood
        moved by more than the noise explains) for up to :data:`REUSE_FRAMES` frames, or the
        same light in the histogram too (within :data:`REUSE_HISTOGRAM`) for up to
        :data:`REUSE_MOVING_FRAMES`."""
        last = self._last
        if last is None or last.age >= REUSE_FRAMES or last.small.shape != small.shape:
            return None
        mean = float(small.mean())
        if abs(mean - last.mean) > REUSE_MEAN * last.mean + REUSE_MEAN_FLOOR:
            return None
        change = float(cv2.blur(cv2.absdiff(small, last.small), (3, 3)).max())
        still = change <= REUSE_CHANGE + REUSE_NOISE * self._noise
        if not still and (
            last.age >= REUSE_MOVING_FRAMES
            or _histogram_distance(_luma_histogram(small), last.histogram) > REUSE_HISTOGRAM
        ):
            return None
        last.age += 1
        return last


def histogram_distance_8bit(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`sagc.stream.smoothing.histogram_distance` of two h×w×3 uint8 RGB frames, with OpenCV."""
    return _histogram_distance(_luma_histogram(a), _luma_histogram(b))


def _histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    return 0.5 * float(np.abs(a - b).sum())


def _luma_histogram(rgb: np.ndarray) -> np.ndarray:
    """The 32-bin luma histogram of [0, 1] (as ``torch.histc``: 1.0 in the last bin), normalised."""
    luma = cv2.transform(rgb.astype(np.float32), _LUMA * np.float32(HISTOGRAM_BINS / 255.0))
    bins = np.minimum(luma.astype(np.int64), HISTOGRAM_BINS - 1).ravel()
    return np.bincount(bins, minlength=HISTOGRAM_BINS) / max(1, bins.size)


@dataclass
class _Estimate:
    """γ's curve as estimated from the low-resolution frame ``small`` (None: the gate left it
    alone), the gate's weight, and the frames that reused it; what later frames are compared
    with is derived from ``small`` once."""

    small: np.ndarray
    curve: Curve | None
    weight: float
    age: int = 0

    @functools.cached_property
    def mean(self) -> float:
        """The thumbnail's mean level."""
        return float(self.small.mean())

    @functools.cached_property
    def histogram(self) -> np.ndarray:
        """The thumbnail's luma histogram (:func:`_luma_histogram`)."""
        return _luma_histogram(self.small)

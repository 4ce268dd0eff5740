"""The CPU enhance stage: 8-bit frames through lookup tables and OpenCV, others in floating point."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys

import cv2
import numpy as np
import torch

from sagc.core.colour import LUMA_WEIGHTS
from sagc.models import Enhancer, RuntimeSettings
from sagc.models.denoise import GREY_WEIGHTS, NOISE_MASK, NOISE_SCALE, RADIUS, SIGMA_SPACE
from sagc.models.guide import LOG_FLOOR, guide_coefficients, guide_radius, log_luma

from .frame import Frame, frame_to_tensor, tensor_to_pixels
from .stage import Done, Stage
from .timing import step

__all__ = ["CpuStage", "GammaTable", "noise_level_8bit"]

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
    if rgb.shape[0] < 3 or rgb.shape[1] < 3:
        return 0.0
    grey = cv2.transform(rgb.astype(np.float32), _GREY)
    response = cv2.filter2D(grey, -1, _MASK, borderType=cv2.BORDER_REFLECT_101)[1:-1, 1:-1]
    return float(cv2.norm(response, cv2.NORM_L1)) / response.size * NOISE_SCALE


class GammaTable:
    """All answers of ``x ** γ`` for 8-bit ``x`` and ``levels`` quantised γ: one gather per pixel.

    ``table[q, x] = round(255 · max(min(x · gain / 255, 1), eps) ** (q / (levels − 1)))``; with
    256 levels γ is quantised in steps of 1/255, far below what 8-bit output can show.
    """

    def __init__(self, *, gain: float = 1.0, eps: float, levels: int = 256) -> None:
        if not 2 <= levels <= 256:
            raise ValueError(f"levels must be in [2, 256], got {levels}")
        self.levels = levels
        self.gain = gain
        self._scratch: dict[str, np.ndarray] | None = None  # full-frame float buffers (guided_levels)
        x = np.clip(np.arange(256, dtype=np.float64) * gain / 255.0, eps, 1.0)
        gamma = np.arange(levels, dtype=np.float64) / (levels - 1)
        self.table = np.rint(255.0 * x[None, :] ** gamma[:, None]).astype(np.uint8).ravel()

    def quantize(self, gamma: torch.Tensor) -> np.ndarray:
        """1×3×h×w γ in (0, 1) → h×w×3 uint8 level indices."""
        q = gamma[0].permute(1, 2, 0).float().mul(self.levels - 1).round_().clamp_(0, self.levels - 1)
        return q.to(torch.uint8).cpu().numpy()

    def guided_levels(
        self, gamma: torch.Tensor, small: torch.Tensor, rgb: np.ndarray, *, fraction: float
    ) -> np.ndarray:
        """:func:`sagc.models.guide.guided_gamma` as level indices at ``rgb``'s size: the curve
        coefficients are fitted on the low-resolution (gain-adjusted) ``small`` in torch, then
        upsampled and applied to ``rgb``'s log luma with OpenCV, in buffers kept between frames
        of one size (fresh full-frame float arrays cost more than the arithmetic)."""
        height, width = rgb.shape[:2]
        buffers = self._buffers(height, width)
        radius = guide_radius(gamma.shape[-2], gamma.shape[-1], fraction)
        coefficients = guide_coefficients(gamma, log_luma(small.float()), radius=radius)
        slope, offset = (
            self._full_size(c[0].permute(1, 2, 0).mul(self.levels - 1).contiguous().numpy(), buffer)
            for c, buffer in zip(coefficients, (buffers["slope"], buffers["offset"]), strict=True)
        )
        x, luma, luma3 = buffers["rgb"], buffers["luma"], buffers["luma3"]
        np.copyto(x, rgb)
        if self.gain == 1.0:
            cv2.transform(x, _LUMA / 255.0, dst=luma)
        else:
            cv2.transform(np.minimum(x * (self.gain / 255.0), 1.0), _LUMA, dst=luma)
        cv2.log(cv2.max(luma, LOG_FLOOR, dst=luma), dst=luma)
        cv2.merge([luma, luma, luma], dst=luma3)
        levels = cv2.add(cv2.multiply(slope, luma3, dst=slope), offset, dst=slope)
        cv2.max(levels, 0.0, dst=levels)
        if self.levels < 256:  # (a plain number would clip the first channel only)
            cv2.min(levels, (self.levels - 1.0,) * 4, dst=levels)
        return cv2.convertScaleAbs(levels)  # rounds to the nearest level, saturates at 255

    def _buffers(self, height: int, width: int) -> dict[str, np.ndarray]:
        if self._scratch is None or self._scratch["rgb"].shape[:2] != (height, width):
            planes = {"rgb": 3, "slope": 3, "offset": 3, "luma3": 3, "luma": 1}
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

    def apply(self, rgb: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """Look up every pixel and channel: H×W×3 uint8 in, H×W×3 uint8 out."""
        index = (levels.astype(np.uint16) << 8) | rgb
        return np.take(self.table, index)


class CpuStage(Stage):
    """The :class:`~sagc.stream.stage.Stage` on the CPU; one frame at a time, finished on submit.

    8-bit frames take the fast path: γ is estimated on an area-downscaled copy (OpenCV, straight
    from uint8), upsampled as 8-bit levels and applied through a :class:`GammaTable`, so no
    full-resolution float image is ever made, and a frame the exposure gate leaves alone is
    returned as it is after the estimate; the noise reduction runs there with OpenCV (the
    noise estimate and filter ``models.denoise`` defines). Everything else (16-bit, another
    device, ``fast=False``) runs the :class:`~sagc.models.Enhancer` in floating point.
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
        self.table: GammaTable | None = None
        self.configure(settings or enhancer.settings)

    def _configured(self, settings: RuntimeSettings) -> None:
        if self.fast and (self.table is None or self.table.gain != settings.gain):
            self.table = GammaTable(gain=settings.gain, eps=self.enhancer.eps)

    def submit(self, frame: Frame) -> Done:
        return Done(self._enhance(frame))

    @torch.inference_mode()
    def _enhance(self, frame: Frame) -> Frame:
        if self.table is not None and frame.rgb.dtype == np.uint8:
            return frame.with_pixels(self._fast(frame.rgb))
        x = frame_to_tensor(frame, device=self.device, dtype=self.dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        y = self.enhancer(x, **self.video_state.hooks())
        return frame.with_pixels(tensor_to_pixels(y, dtype=frame.rgb.dtype))

    def _gamma(self, small: torch.Tensor) -> tuple[torch.Tensor, float]:
        """γ (the exposure decision and γ smoothed over time where the stage keeps that state) and
        the gate's weight (1 without one)."""
        gamma, weight = self.enhancer.gamma(small, exposure=self.exposure)
        if self.smoother is not None:
            gamma = self.smoother(gamma, small)
        return gamma, 1.0 if weight is None else float(weight)

    def _fast(self, rgb: np.ndarray) -> np.ndarray:
        assert self.table is not None
        settings, timer = self.settings, self.timer
        height, width = rgb.shape[:2]
        low_h, low_w = self.enhancer.low_resolution_size(height, width)
        same = (low_h, low_w) == (height, width)
        with step(timer, "downscale"):
            small = rgb if same else cv2.resize(rgb, (low_w, low_h), interpolation=cv2.INTER_AREA)
        with step(timer, "estimate"):
            x = torch.from_numpy(small).permute(2, 0, 1).unsqueeze(0).to(self.dtype).div_(255.0)
            x = self.enhancer.prepare(x.contiguous(memory_format=torch.channels_last))
            gamma, weight = self._gamma(x)
        if weight == 0.0 and settings.gain == 1.0 and bool((gamma >= 1.0).all()):
            # the gate leaves the frame alone (γ = 1, no filtering): nothing at full resolution
            if self.temporal_denoiser is not None:
                self.temporal_denoiser.reset()
            return rgb
        noise = None  # the frame's noise in 8-bit levels, measured once for both filters
        if self.temporal_denoiser is not None:
            with step(timer, "temporal noise reduction"):
                noise = noise_level_8bit(rgb)
                filtered = self.temporal_denoiser.filter_8bit(rgb, noise=noise, weight=weight)
                rgb, noise = filtered, noise if filtered is rgb else None
        if settings.denoise:
            with step(timer, "noise reduction"):
                sigma = weight * settings.denoise * (noise_level_8bit(rgb) if noise is None else noise)
                if sigma > 0:
                    rgb = cv2.bilateralFilter(rgb, 2 * RADIUS + 1, sigma, SIGMA_SPACE)
        with step(timer, "upsample"):
            if settings.guide > 0.0:
                levels = self.table.guided_levels(gamma, x, rgb, fraction=settings.guide)
            else:
                levels = self.table.quantize(gamma)
                if not same:
                    levels = cv2.resize(levels, (width, height), interpolation=cv2.INTER_LINEAR)
        with step(timer, "apply"):
            return self.table.apply(rgb, levels)

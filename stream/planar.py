"""``x ** γ`` on 8-bit 4:2:0 planes, without converting the full-resolution frame to RGB.

γ is estimated per RGB channel. In 4:2:0 the full-resolution plane is luma, so:

- **luma** (full resolution) gets one exponent, the luma-weighted mean of the three channels'
  (the guided curve's coefficients are linear, so they are mixed at low resolution before
  upsampling): ``y' = y ** (Kr γr + Kg γg + Kb γb)``, exact for grey, times a correction for
  colour (the luma of three exponents is not the exponent of luma) computed where chroma is;
- **chroma** (half resolution, as stored) is computed exactly at its own resolution: the 2×2
  mean of luma and the chroma pair make RGB there, each channel is raised to its own γ, and the
  chroma of that result is written back; its luma against the one-exponent luma gives the
  correction.

Everything runs in float32 with OpenCV in buffers kept between frames of one size; luma and
chroma are normalised by the matrix and range the planes carry (limited: Y 16–235, C 16–240).
The noise filters and the thumbnail γ is estimated from are the stage's
(:class:`~sagc.stream.cpu_stage.CpuStage`).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sagc.models.guide import GAMMA_FLOOR, LOG_FLOOR

from .frame import YuvPlanes
from .guide_cv import Curve
from .thumbnail import block_means
from .timing import StepTimer, step

__all__ = [
    "LUMA_BY_MATRIX",
    "PlanarGammaMap",
    "half_luma",
    "half_rgb",
    "luma_weights",
    "small_rgb",
    "range_scales",
    "ycc_to_rgb_levels",
]

_MAX_CORRECTION = 1.0  # the luma correction is held within e^±1 (far beyond what colour explains)

LUMA_BY_MATRIX = {
    "itu601": (0.299, 0.587, 0.114),
    "itu709": (0.2126, 0.7152, 0.0722),
    "fcc": (0.30, 0.59, 0.11),
    "smpte240m": (0.212, 0.701, 0.087),
    "bt2020": (0.2627, 0.6780, 0.0593),
}
"""Luma weights (Kr, Kg, Kb) of each swscale matrix name."""


def luma_weights(matrix: str) -> tuple[float, float, float]:
    """(Kr, Kg, Kb) of a swscale matrix (BT.601 for names it does not know, as swscale)."""
    return LUMA_BY_MATRIX.get(matrix, LUMA_BY_MATRIX["itu601"])


def range_scales(color_range: int) -> tuple[float, float, float]:
    """(luma black, luma span, chroma span) in code values: limited 16/219/224, full 0/255/255."""
    return (0.0, 255.0, 255.0) if color_range == 2 else (16.0, 219.0, 224.0)


def _ycc_to_rgb(matrix: str, color_range: int) -> np.ndarray:
    """3×4 affine map from (Y, Cb, Cr) code values to RGB in [0, 1] (for ``cv2.transform``)."""
    kr, kg, kb = luma_weights(matrix)
    black, luma_span, chroma_span = range_scales(color_range)
    rgb_from_ycc = np.array(
        [
            [1.0, 0.0, 2.0 * (1.0 - kr)],
            [1.0, -2.0 * kb * (1.0 - kb) / kg, -2.0 * kr * (1.0 - kr) / kg],
            [1.0, 2.0 * (1.0 - kb), 0.0],
        ]
    )
    scale = np.diag([1.0 / luma_span, 1.0 / chroma_span, 1.0 / chroma_span])
    linear = rgb_from_ycc @ scale
    offset = -linear @ np.array([black, 128.0, 128.0])
    return np.concatenate([linear, offset[:, None]], axis=1).astype(np.float32)


def ycc_to_rgb_levels(matrix: str, color_range: int) -> np.ndarray:
    """3×3 map from (Y, Cb, Cr) code-value differences to RGB differences in 8-bit levels."""
    return np.ascontiguousarray(_ycc_to_rgb(matrix, color_range)[:, :3] * 255.0)


def _rgb_to_ycc(matrix: str, color_range: int) -> np.ndarray:
    """3×4 affine map from RGB in [0, 1] to (Y, Cb, Cr) code values (the inverse of :func:`_ycc_to_rgb`)."""
    forward = _ycc_to_rgb(matrix, color_range).astype(np.float64)
    linear = np.linalg.inv(forward[:, :3])
    offset = -linear @ forward[:, 3]
    return np.concatenate([linear, offset[:, None]], axis=1).astype(np.float32)


def half_luma(y: np.ndarray) -> np.ndarray:
    """The 2×2 mean of a luma plane (uint8 or float32), float32 and unrounded: luma at chroma
    resolution."""
    half = y.shape[1] // 2, y.shape[0] // 2
    return cv2.resize(y.astype(np.float32, copy=False), half, interpolation=cv2.INTER_AREA)


def half_rgb(
    luma: np.ndarray, u: np.ndarray, v: np.ndarray, *, matrix: str, color_range: int, out: np.ndarray | None = None
) -> np.ndarray:
    """RGB at chroma resolution from :func:`half_luma` and the chroma pair: h/2×w/2×3 float32
    in [0, 1] units, not clipped (colours outside the RGB range keep their excess)."""
    ycc = cv2.merge([luma, u.astype(np.float32, copy=False), v.astype(np.float32, copy=False)], dst=out)
    return cv2.transform(ycc, _ycc_to_rgb(matrix, color_range), dst=ycc)


def small_rgb(rgb: np.ndarray, size: tuple[int, int], *, factor: int = 0) -> np.ndarray:
    """The low-resolution frame γ is estimated from, h×w×3 uint8 RGB at ``size`` (height,
    width), from :func:`half_rgb` (left as it is): clipped to [0, 1] as 8-bit RGB is, then
    averaged over ``factor`` × ``factor`` blocks (the float path's blocks,
    :func:`~sagc.stream.thumbnail.block_means`), or area-resampled to ``size`` when ``factor``
    is 0. (Averaging the planes before converting would skip that clipping, and noisy dark
    frames, whose chroma noise leaves the RGB range, would come out darker than the RGB the
    estimator learned from.)"""
    clipped = np.clip(rgb, 0.0, 1.0)
    if factor:
        small = block_means(clipped, factor)
    else:
        small = cv2.resize(clipped, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return cv2.convertScaleAbs(small, alpha=255.0)  # rounds


class PlanarGammaMap:
    """Apply a low-resolution γ map to 4:2:0 planes (module docstring); buffers are kept
    between frames of one size and colour."""

    def __init__(self, *, gain: float = 1.0, eps: float, floor: float = GAMMA_FLOOR) -> None:
        self.gain = gain
        self.eps = eps
        self.floor = floor
        self._key: tuple[int, int, str, int] | None = None
        self._scratch: dict[str, np.ndarray] = {}
        self._tables: dict[tuple[float, float, float], np.ndarray] = {}

    def apply(
        self,
        planes: YuvPlanes,
        filtered: tuple[np.ndarray, np.ndarray, np.ndarray],
        curve: Curve,
        *,
        luma_half: np.ndarray | None = None,
        rgb_half: np.ndarray | None = None,
        timer: StepTimer | None = None,
    ) -> YuvPlanes:
        """Raise ``filtered`` (the Y, U, V planes of ``planes`` after noise reduction: uint8 or
        float32 code values) to γ per RGB channel as ``curve`` gives it. Returns new planes of
        ``planes``' size and colour. ``luma_half`` and ``rgb_half`` are :func:`half_luma` and
        :func:`half_rgb` of ``filtered`` where the caller has them (``rgb_half`` is overwritten).
        ``timer`` times the steps ``chroma`` (everything at chroma resolution), ``upsample`` (luma's γ at
        full resolution) and ``apply`` (luma's exponent)."""
        self._prepare(planes)
        out = YuvPlanes.empty_like(planes)
        out_y, out_u, out_v = out.split()
        slope, offset = curve.slope, curve.offset
        with step(timer, "chroma"):
            if luma_half is None:
                luma_half = half_luma(filtered[0])
            if rgb_half is None:
                u, v = filtered[1:]
                rgb_half = half_rgb(
                    luma_half, u, v, matrix=planes.matrix, color_range=planes.color_range, out=self._scratch["rgb"]
                )
            correction = self._chroma(planes, luma_half, rgb_half, slope, offset, out_u, out_v)
        with step(timer, "upsample"):
            log_y, exponent = self._luma_gamma(planes, filtered[0], slope, offset)
        with step(timer, "apply"):
            black, luma_span, _ = range_scales(planes.color_range)
            cv2.multiply(log_y, exponent, dst=log_y)
            cv2.add(log_y, cv2.resize(correction, (planes.width, planes.height), dst=exponent), dst=log_y)
            cv2.exp(log_y, dst=log_y)
            cv2.convertScaleAbs(log_y, dst=out_y, alpha=luma_span, beta=black)
        return out

    def _chroma(
        self,
        planes: YuvPlanes,
        luma_half: np.ndarray,
        rgb: np.ndarray,
        slope: np.ndarray | None,
        offset: np.ndarray,
        out_u: np.ndarray,
        out_v: np.ndarray,
    ) -> np.ndarray:
        """Chroma, exact at its own resolution (``rgb``, :func:`half_rgb`, each channel to its γ
        in place, the chroma of that written to ``out_u``/``out_v``); returns the luma correction
        at that resolution: the log ratio of the exact luma there to the one-exponent luma (the
        luma of three exponents is not the exponent of luma)."""
        scratch = self._scratch
        black, luma_span, _ = range_scales(planes.color_range)
        log_eps = math.log(self.eps)
        ycc = scratch["ycc"]
        if self.gain != 1.0:
            cv2.multiply(rgb, (self.gain,) * 4, dst=rgb)
        cv2.min(rgb, (1.0,) * 4, dst=rgb)
        log_half = scratch["log_half"]
        self._log_normalised(luma_half, 1.0 / luma_span, -black / luma_span, log_half)
        guide_half = cv2.max(log_half, math.log(LOG_FLOOR))
        gamma_rgb = self._exponent(slope, offset, cv2.merge([guide_half] * 3, dst=scratch["guide3"]), scratch["gamma3"])
        cv2.max(rgb, (self.eps,) * 4, dst=rgb)
        cv2.log(rgb, dst=rgb)
        cv2.multiply(rgb, gamma_rgb, dst=rgb)
        cv2.exp(rgb, dst=rgb)
        cv2.transform(rgb, self._to_ycc, dst=ycc)
        luma_out, chroma_u, chroma_v = cv2.split(ycc)
        cv2.convertScaleAbs(chroma_u, dst=out_u)
        cv2.convertScaleAbs(chroma_v, dst=out_v)
        correction = cv2.multiply(cv2.transform(gamma_rgb, self._mix), cv2.max(log_half, log_eps))
        cv2.max(cv2.add(luma_out, -black), self.eps * luma_span, dst=luma_out)
        cv2.log(cv2.multiply(luma_out, 1.0 / luma_span, dst=luma_out), dst=luma_out)
        cv2.subtract(luma_out, correction, dst=correction)
        return np.clip(correction, -_MAX_CORRECTION, _MAX_CORRECTION, out=correction)

    def _luma_gamma(
        self, planes: YuvPlanes, y: np.ndarray, slope: np.ndarray | None, offset: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Luma's log (clamped at eps) and its one exponent, the luma-weighted mean of the
        channels' γ, at full resolution (buffers the next frame reuses)."""
        scratch = self._scratch
        black, luma_span, _ = range_scales(planes.color_range)
        log_y, guide_y = scratch["log_y"], scratch["guide_y"]
        if y.dtype == np.uint8:  # the logs of 256 levels, looked up
            cv2.LUT(y, self._log_table(black, luma_span, self.eps), dst=log_y)
            cv2.LUT(y, self._log_table(black, luma_span, LOG_FLOOR), dst=guide_y)
        else:
            self._log_normalised(y, 1.0 / luma_span, -black / luma_span, log_y)
            cv2.max(log_y, math.log(LOG_FLOOR), dst=guide_y)
            cv2.max(log_y, math.log(self.eps), dst=log_y)
        mixed_slope = None if slope is None else cv2.transform(slope, self._mix)
        return log_y, self._exponent(mixed_slope, cv2.transform(offset, self._mix), guide_y, scratch["gamma_y"])

    def _log_normalised(self, plane: np.ndarray, alpha: float, beta: float, out: np.ndarray) -> None:
        """``log(max(min(gain · (plane · alpha + beta), 1), tiny))`` into ``out`` (float32)."""
        np.multiply(plane, np.float32(alpha * self.gain), out=out, dtype=np.float32)
        cv2.add(out, beta * self.gain, dst=out)
        cv2.min(out, 1.0, dst=out)
        cv2.max(out, min(self.eps, LOG_FLOOR), dst=out)
        cv2.log(out, dst=out)

    def _exponent(self, slope: np.ndarray | None, offset: np.ndarray, guide: np.ndarray, out: np.ndarray) -> np.ndarray:
        """γ at ``guide``'s size: ``slope · guide + offset`` (coefficients upsampled; ``guide``
        the log luma clamped at log LOG_FLOOR, overwritten), or ``offset`` bilinearly when there
        is no slope; clamped to [floor, 1]."""
        size = (guide.shape[1], guide.shape[0])
        cv2.resize(offset, size, dst=out, interpolation=cv2.INTER_LINEAR)
        if slope is not None:
            cv2.multiply(guide, cv2.resize(slope, size, interpolation=cv2.INTER_LINEAR), dst=guide)
            cv2.add(out, guide, dst=out)
        cv2.max(out, (self.floor,) * 4, dst=out)
        return cv2.min(out, (1.0,) * 4, dst=out)

    def _log_table(self, black: float, span: float, floor: float) -> np.ndarray:
        """``log(max(min(gain · (v − black) / span, 1), floor))`` for the 256 code values v."""
        key = (black, span, floor)
        if key not in self._tables:
            levels = (np.arange(256, dtype=np.float64) - black) / span * self.gain
            self._tables[key] = np.log(np.clip(levels, floor, 1.0)).astype(np.float32).reshape(1, 256)
        return self._tables[key]

    def _prepare(self, planes: YuvPlanes) -> None:
        key = (planes.width, planes.height, planes.matrix, planes.color_range)
        if key == self._key:
            return
        self._key = key
        self._to_ycc = _rgb_to_ycc(planes.matrix, planes.color_range)
        self._mix = np.array([luma_weights(planes.matrix)], dtype=np.float32)
        full, half = (planes.height, planes.width), (planes.height // 2, planes.width // 2)
        shapes = {
            "log_y": full,
            "gamma_y": full,
            "guide_y": full,
            "log_half": half,
            "ycc": (*half, 3),
            "rgb": (*half, 3),
            "guide3": (*half, 3),
            "gamma3": (*half, 3),
        }
        self._scratch = {name: np.empty(shape, np.float32) for name, shape in shapes.items()}

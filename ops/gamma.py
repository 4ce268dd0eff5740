"""The exponent ``x ** γ`` in every form.

:func:`apply_gamma` and :class:`ApplyGamma` on tensors (the float path, any device, exported
graphs); :class:`GammaMap` on 8-bit RGB frames and :class:`PlanarGammaMap` on 8-bit 4:2:0 planes,
both with OpenCV in float32 buffers kept between frames of one size, bringing γ to full
resolution from a :class:`~sagc.ops.guide.Curve` (the guided upsampling) on the way. The 8-bit
forms compute ``exp(γ · log(max(x · gain / 255, eps)))`` in float32 and round once at the end:
the float path's arithmetic, nothing quantised before the exponent expands dark levels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from sagc.core.timing import StepTimer, step

from .black import toe_array
from .colour import LUMA_WEIGHTS, luma_weights, range_scales, rgb_to_ycc
from .downscale import half_luma, half_rgb
from .guide import GAMMA_FLOOR, LOG_FLOOR, Curve

__all__ = ["DEFAULT_EPS", "ApplyGamma", "GammaMap", "PlanarGammaMap", "apply_gamma"]

DEFAULT_EPS = 1e-4
_TABLES = 64  # logarithm tables kept (one per code range, floor and black point)
_MAX_CORRECTION = 1.0  # the 4:2:0 luma correction is held within e^±1 (far beyond what colour explains)

_LUMA = np.array([LUMA_WEIGHTS], dtype=np.float32)


def apply_gamma(x: Tensor, gamma: Tensor, *, eps: float = DEFAULT_EPS) -> Tensor:
    """Return ``x ** gamma`` computed as ``exp(gamma * log(max(x, eps)))``.

    ``gamma`` broadcasts against ``x``; with ``gamma`` in (0, 1) the result never darkens ``x``
    (apart from inputs below ``eps``, which are lifted to ``eps ** gamma``).
    """
    return torch.exp(gamma * torch.log(torch.clamp(x, min=eps)))


class ApplyGamma(nn.Module):
    """Module form of :func:`apply_gamma`."""

    def __init__(self, *, eps: float = DEFAULT_EPS) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor, gamma: Tensor) -> Tensor:
        return apply_gamma(x, gamma, eps=self.eps)


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
        self.floor = floor  # γ's lower clamp (as :func:`sagc.ops.guide.guided_gamma`)
        self._scratch: dict[str, np.ndarray] | None = None

    def full_size(self, curve: Curve, x: np.ndarray) -> np.ndarray:
        """γ at ``x``'s size (H×W×3 float32), clamped to [floor, 1]: the curve's coefficients
        upsampled and applied to ``x``'s own log luma (:func:`sagc.ops.guide.guided_gamma`),
        or γ bilinearly where the curve has no slope. The result is a buffer the next call reuses."""
        height, width = x.shape[:2]
        buffers = self._buffers(height, width)
        offset = self._full_size(curve.offset, buffers["offset"])
        if curve.slope is None:
            return self._clamped(offset)
        slope = self._full_size(curve.slope, buffers["slope"])
        luma, luma3 = buffers["luma"], buffers["luma3"]
        work = self._scaled(x, black=curve.black, gain=curve.gain)
        cv2.transform(work, _LUMA, dst=luma)
        cv2.log(cv2.max(luma, LOG_FLOOR, dst=luma), dst=luma)
        cv2.merge([luma, luma, luma], dst=luma3)
        out = cv2.add(cv2.multiply(slope, luma3, dst=slope), offset, dst=slope)
        return self._clamped(out)

    def apply(self, x: np.ndarray, gamma: np.ndarray, *, black: float = 0.0, gain: float = 1.0) -> np.ndarray:
        """``x`` (H×W×3 uint8, or float32 in 8-bit units) through its levels, the exposure
        ``gain`` and the toe of the ``black`` point (:class:`~sagc.ops.black.Levels`; the
        curve's), to the power of ``gamma`` (H×W×3 float32): H×W×3 uint8."""
        work = self._scaled(x, black=black, gain=gain)
        cv2.max(work, (self.eps,) * 4, dst=work)
        cv2.log(work, dst=work)
        cv2.multiply(work, gamma, dst=work)
        cv2.exp(work, dst=work)
        return cv2.convertScaleAbs(work, alpha=255.0)  # rounds, saturates at 255

    def _scaled(self, x: np.ndarray, *, black: float = 0.0, gain: float = 1.0) -> np.ndarray:
        """``toe(min(x · gain / 255, 1), black)`` (:func:`~sagc.ops.black.toe_array`; none
        when ``black`` is 0), the map's gain times the frame's, in the frame-sized work buffer."""
        work = self._buffers(*x.shape[:2])["work"]
        gain = self.gain * gain
        np.multiply(x, np.float32(gain / 255.0), out=work, dtype=np.float32)
        if gain > 1.0:
            cv2.min(work, (1.0,) * 4, dst=work)
        if black:
            toe_array(work, black)
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


class PlanarGammaMap:
    """``x ** γ`` on 8-bit 4:2:0 planes, without converting the full-resolution frame to RGB;
    buffers are kept between frames of one size and colour.

    γ is estimated per RGB channel; in 4:2:0 the full-resolution plane is luma, so:

    - **luma** (full resolution) gets one exponent, the luma-weighted mean of the three
      channels' (the guided curve's coefficients are linear, so they are mixed at low
      resolution before upsampling): ``y' = y ** (Kr γr + Kg γg + Kb γb)``, exact for grey,
      times a correction for colour (the luma of three exponents is not the exponent of luma)
      computed where chroma is;
    - **chroma** (half resolution, as stored) is computed exactly at its own resolution: the
      2×2 mean of luma and the chroma pair make RGB there, each channel is raised to its own γ,
      and the chroma of that result is written back; its luma against the one-exponent luma
      gives the correction.

    Everything runs in float32 with OpenCV; luma and chroma are normalised by the matrix and
    range of the planes (limited: Y 16–235, C 16–240).
    """

    def __init__(self, *, gain: float = 1.0, eps: float, floor: float = GAMMA_FLOOR) -> None:
        self.gain = gain
        self.eps = eps
        self.floor = floor
        self._key: tuple[int, int, str, int] | None = None
        self._scratch: dict[str, np.ndarray] = {}
        self._tables: dict[tuple[float, float, float, float, float], np.ndarray] = {}
        self._point = 0.0  # the black point of the frame being applied (the curve's)
        self._gain = gain  # the map's gain times the exposure gain of that frame

    def apply(
        self,
        filtered: tuple[np.ndarray, ...],
        curve: Curve,
        *,
        out: tuple[np.ndarray, np.ndarray, np.ndarray],
        matrix: str,
        color_range: int,
        luma_half: np.ndarray | None = None,
        rgb_half: np.ndarray | None = None,
        timer: StepTimer | None = None,
    ) -> None:
        """Raise ``filtered`` (Y, U, V planes of the ``matrix`` and ``color_range`` named as in
        :mod:`sagc.ops.colour`, after noise reduction: uint8 or float32 code values) to γ per
        RGB channel as ``curve`` gives it, into the uint8 planes ``out``. ``luma_half`` and
        ``rgb_half`` are :func:`~sagc.ops.downscale.half_luma` and
        :func:`~sagc.ops.downscale.half_rgb` of ``filtered`` where the caller has them
        (``rgb_half`` is overwritten). ``timer`` times the steps ``chroma`` (everything at chroma
        resolution), ``upsample`` (luma's γ at full resolution) and ``apply`` (luma's exponent)."""
        height, width = filtered[0].shape
        self._prepare(width, height, matrix, color_range)
        out_y, out_u, out_v = out
        slope, offset = curve.slope, curve.offset
        self._point = curve.black
        self._gain = self.gain * curve.gain
        with step(timer, "chroma"):
            if luma_half is None:
                luma_half = half_luma(filtered[0])
            if rgb_half is None:
                u, v = filtered[1:]
                rgb_half = half_rgb(luma_half, u, v, matrix=matrix, color_range=color_range, out=self._scratch["rgb"])
            correction = self._chroma(luma_half, rgb_half, slope, offset, out_u, out_v)
        with step(timer, "upsample"):
            log_y, exponent = self._luma_gamma(filtered[0], slope, offset)
        with step(timer, "apply"):
            black, luma_span, _ = range_scales(color_range)
            cv2.multiply(log_y, exponent, dst=log_y)
            cv2.add(log_y, cv2.resize(correction, (width, height), dst=exponent), dst=log_y)
            cv2.exp(log_y, dst=log_y)
            cv2.convertScaleAbs(log_y, dst=out_y, alpha=luma_span, beta=black)

    def _chroma(
        self,
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
        black, luma_span, _ = self._range
        log_eps = math.log(self.eps)
        ycc = scratch["ycc"]
        if self._gain != 1.0:
            cv2.multiply(rgb, (self._gain,) * 4, dst=rgb)
        cv2.min(rgb, (1.0,) * 4, dst=rgb)
        if self._point:
            toe_array(rgb, self._point, scratch=scratch["gamma3"])
        log_half = scratch["log_half"]
        self._log_normalised(luma_half, 1.0 / luma_span, -black / luma_span, log_half, scratch=scratch["half"])
        guide_half = cv2.max(log_half, math.log(LOG_FLOOR), dst=scratch["half"])
        gamma_rgb = self._exponent(
            slope, offset, cv2.merge([guide_half] * 3, dst=scratch["guide3"]), scratch["gamma3"], scratch["slope3"]
        )
        cv2.max(rgb, (self.eps,) * 4, dst=rgb)
        cv2.log(rgb, dst=rgb)
        cv2.multiply(rgb, gamma_rgb, dst=rgb)
        cv2.exp(rgb, dst=rgb)
        cv2.transform(rgb, self._to_ycc, dst=ycc)
        luma_out, chroma_u, chroma_v = cv2.split(ycc, [scratch["ycc_y"], scratch["ycc_u"], scratch["ycc_v"]])
        cv2.convertScaleAbs(chroma_u, dst=out_u)
        cv2.convertScaleAbs(chroma_v, dst=out_v)
        correction = cv2.multiply(cv2.transform(gamma_rgb, self._mix), cv2.max(log_half, log_eps))
        cv2.max(cv2.add(luma_out, -black), self.eps * luma_span, dst=luma_out)
        cv2.log(cv2.multiply(luma_out, 1.0 / luma_span, dst=luma_out), dst=luma_out)
        cv2.subtract(luma_out, correction, dst=correction)
        return np.clip(correction, -_MAX_CORRECTION, _MAX_CORRECTION, out=correction)

    def _luma_gamma(self, y: np.ndarray, slope: np.ndarray | None, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Luma's log (clamped at eps) and its one exponent, the luma-weighted mean of the
        channels' γ, at full resolution (buffers the next frame reuses)."""
        scratch = self._scratch
        black, luma_span, _ = self._range
        log_y, guide_y = scratch["log_y"], scratch["guide_y"]
        if y.dtype == np.uint8:  # the logs of 256 levels, looked up
            cv2.LUT(y, self._log_table(black, luma_span, self.eps), dst=log_y)
            cv2.LUT(y, self._log_table(black, luma_span, LOG_FLOOR), dst=guide_y)
        else:
            self._log_normalised(y, 1.0 / luma_span, -black / luma_span, log_y, scratch=guide_y)
            cv2.max(log_y, math.log(LOG_FLOOR), dst=guide_y)
            if self.eps > LOG_FLOOR:  # else the log is already clamped at eps
                cv2.max(log_y, math.log(self.eps), dst=log_y)
        mixed_slope = None if slope is None else cv2.transform(slope, self._mix)
        offset = cv2.transform(offset, self._mix)
        return log_y, self._exponent(mixed_slope, offset, guide_y, scratch["gamma_y"], scratch["slope_y"])

    def _log_normalised(
        self, plane: np.ndarray, alpha: float, beta: float, out: np.ndarray, *, scratch: np.ndarray
    ) -> None:
        """``log(max(toe(min(gain · (plane · alpha + beta), 1)), tiny))`` into ``out``
        (float32), ``toe`` that of the black point (:func:`~sagc.ops.black.toe_array`, worked
        in ``scratch``, a buffer of ``out``'s shape)."""
        np.multiply(plane, np.float32(alpha * self._gain), out=out, dtype=np.float32)
        cv2.add(out, beta * self._gain, dst=out)
        cv2.min(out, 1.0, dst=out)
        if self._point:
            toe_array(out, self._point, scratch=scratch)
        cv2.max(out, min(self.eps, LOG_FLOOR), dst=out)
        cv2.log(out, dst=out)

    def _exponent(
        self, slope: np.ndarray | None, offset: np.ndarray, guide: np.ndarray, out: np.ndarray, scratch: np.ndarray
    ) -> np.ndarray:
        """γ at ``guide``'s size: ``slope · guide + offset`` (coefficients upsampled, the slope
        into ``scratch``; ``guide`` the log luma clamped at log LOG_FLOOR, overwritten), or
        ``offset`` bilinearly when there is no slope; clamped to [floor, 1]."""
        size = (guide.shape[1], guide.shape[0])
        cv2.resize(offset, size, dst=out, interpolation=cv2.INTER_LINEAR)
        if slope is not None:
            cv2.multiply(guide, cv2.resize(slope, size, dst=scratch, interpolation=cv2.INTER_LINEAR), dst=guide)
            cv2.add(out, guide, dst=out)
        cv2.max(out, (self.floor,) * 4, dst=out)
        return cv2.min(out, (1.0,) * 4, dst=out)

    def _log_table(self, black: float, span: float, floor: float) -> np.ndarray:
        """``log(max(toe(min(gain · (v − black) / span, 1)), floor))`` for the 256 code values v,
        ``toe`` that of the black point (:mod:`sagc.ops.black`; tables of recent points are kept)."""
        point, gain = self._point, self._gain
        key = (black, span, floor, point, gain)
        if key not in self._tables:
            if len(self._tables) >= _TABLES:
                self._tables.clear()
            levels = np.clip((np.arange(256, dtype=np.float64) - black) / span * gain, 0.0, 1.0)
            levels = (1.0 + point**2) * levels**3 / np.maximum(levels**2 + point**2, 1e-12)
            self._tables[key] = np.log(np.maximum(levels, floor)).astype(np.float32).reshape(1, 256)
        return self._tables[key]

    def _prepare(self, width: int, height: int, matrix: str, color_range: int) -> None:
        key = (width, height, matrix, color_range)
        if key == self._key:
            return
        self._key = key
        self._range = range_scales(color_range)
        self._to_ycc = rgb_to_ycc(matrix, color_range)
        self._mix = np.array([luma_weights(matrix)], dtype=np.float32)
        full, half = (height, width), (height // 2, width // 2)
        shapes = {
            "log_y": full,
            "gamma_y": full,
            "guide_y": full,
            "log_half": half,
            "ycc": (*half, 3),
            "rgb": (*half, 3),
            "guide3": (*half, 3),
            "gamma3": (*half, 3),
            "slope_y": full,
            "half": half,
            "slope3": (*half, 3),
            "ycc_y": half,
            "ycc_u": half,
            "ycc_v": half,
        }
        self._scratch = {name: np.empty(shape, np.float32) for name, shape in shapes.items()}

"""Temporal metrics of an enhanced clip, computed while it streams (two frames held at a time).

Flicker (``sagc.eval.metrics.flicker``): ``Σ_t |m_out(t) − m_out(t−1)| / Σ_t |m_in(t) − m_in(t−1)|``
over per-frame mean luma ``m``.

Warping error (Lai et al., "Learning blind video temporal consistency", 2018): consecutive
output frames aligned by optical flow computed on the *reference* frames (the clean reference
when there is one, else the input), occlusions masked::

    E_t = Σ_x M_t(x) · ‖Y_t(x) − Y_{t−1}(x + F_t(x))‖² / (3 · Σ_x M_t(x)),   E = mean_t E_t

``F_t`` is OpenCV's DIS flow from reference frame t to t−1 (so ``Y_{t−1}(x + F_t(x))`` is the
previous output warped onto frame t, bilinear); ``M_t`` keeps pixels whose flow lands inside
the frame and passes the forward–backward check
``|F_t(x) + G_t(x + F_t(x))|² ≤ 0.01 (|F_t|² + |G_t|²) + 0.5`` with ``G_t`` the flow from t−1 to
t. ``Y`` is RGB in [0, 1]. Frames wider than 480 px are area-downscaled by the smallest integer
factor that brings them to 480 or less, and flow and error are computed there (it keeps the
metric cheap enough to stream). Dark references are brightened by one common gain per pair (to
mean luma 110/255, at most ×8) so DIS sees texture; the gain does not touch ``Y``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from sagc.ops.colour import LUMA_WEIGHTS

from .metrics import flicker

__all__ = ["MotionFlow", "WarpingError", "TemporalMeter", "mean_luma"]

_GUIDE_MEAN = 110.0
_WORK_WIDTH = 480
_MAX_GAIN = 8.0


def _working_size(rgb: np.ndarray) -> tuple[int, int]:
    """(width, height) at which flow and warping error are computed: at most 480 px wide."""
    height, width = rgb.shape[:2]
    factor = max(1, -(-width // _WORK_WIDTH))
    return max(1, width // factor), max(1, height // factor)


def _at_working_size(rgb: np.ndarray) -> np.ndarray:
    size = _working_size(rgb)
    if size == (rgb.shape[1], rgb.shape[0]):
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(_at_working_size(rgb), cv2.COLOR_RGB2GRAY)


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs, ys


class MotionFlow:
    """Backward flow between consecutive reference frames and its validity mask, computed once per
    frame and shared by every method's :class:`WarpingError`."""

    def __init__(self) -> None:
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self._previous: np.ndarray | None = None
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    def update(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Add reference frame t (H×W×3 uint8); returns ``(map_x, map_y, mask)`` for t−1 → t (mask:
        uint8, 1 where the flow is trusted), or ``None`` for the first frame."""
        grey = _grey(frame)
        previous, self._previous = self._previous, grey
        if previous is None or previous.shape != grey.shape:
            return None
        mean = cv2.mean(grey)[0]
        if mean < _GUIDE_MEAN:
            gain = min(_MAX_GAIN, _GUIDE_MEAN / max(mean, 1.0))
            grey = cv2.convertScaleAbs(grey, alpha=gain)
            previous = cv2.convertScaleAbs(previous, alpha=gain)
        backward = self._dis.calc(grey, previous, None)  # t → t−1
        forward = self._dis.calc(previous, grey, None)  # t−1 → t
        height, width = grey.shape
        if self._grid is None or self._grid[0].shape != (height, width):
            self._grid = _grid(height, width)
        xs, ys = self._grid
        map_x, map_y = xs + backward[..., 0], ys + backward[..., 1]
        forward_at = cv2.remap(forward, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        bu, bv, fu, fv = backward[..., 0], backward[..., 1], forward_at[..., 0], forward_at[..., 1]
        round_trip = (bu + fu) ** 2 + (bv + fv) ** 2
        bound = 0.01 * (bu * bu + bv * bv + fu * fu + fv * fv) + 0.5
        inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
        mask = ((round_trip <= bound) & inside).astype(np.uint8)
        return map_x, map_y, mask


class WarpingError:
    """Streaming warping error of one output sequence: ``update(output, flow)`` per frame."""

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None
        self.per_frame: list[float] = []

    def update(self, output: np.ndarray, flow: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> float | None:
        """Add output frame t (H×W×3 uint8) with :meth:`MotionFlow.update`'s result; returns E_t."""
        out = _at_working_size(output).astype(np.float32) / 255.0
        previous, self._previous = self._previous, out
        if previous is None or flow is None or previous.shape != out.shape:
            return None
        map_x, map_y, mask = flow
        if cv2.countNonZero(mask) == 0:
            return None
        warped = cv2.remap(previous, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        diff = cv2.subtract(out, warped)
        error = sum(cv2.mean(cv2.multiply(diff, diff), mask=mask)[:3]) / 3.0
        self.per_frame.append(error)
        return error

    @property
    def value(self) -> float:
        """Mean over frames (NaN before two frames)."""
        return float(np.mean(self.per_frame)) if self.per_frame else float("nan")


class TemporalMeter:
    """Per-frame mean luma of input and output, flicker, and the warping error of a clip."""

    def __init__(self, *, warping: bool = True) -> None:
        self.input_luma: list[float] = []
        self.output_luma: list[float] = []
        self.warping = WarpingError() if warping else None

    def update(self, input_rgb: np.ndarray, output_rgb: np.ndarray, flow=None) -> None:
        """Add a frame (H×W×3 uint8): the method's input, its output, and the motion flow
        (:meth:`MotionFlow.update` of this frame; needed for the warping error)."""
        self.input_luma.append(mean_luma(input_rgb))
        self.output_luma.append(mean_luma(output_rgb))
        if self.warping is not None:
            self.warping.update(output_rgb, flow)

    @property
    def flicker(self) -> float:
        if len(self.output_luma) < 2:
            return float("nan")
        return flicker(torch.tensor(self.output_luma), torch.tensor(self.input_luma))

    @property
    def warping_error(self) -> float:
        return self.warping.value if self.warping is not None else float("nan")


def mean_luma(rgb: np.ndarray) -> float:
    """Rec.709 mean luma in [0, 1] of an 8-bit RGB frame (:data:`~sagc.ops.colour.LUMA_WEIGHTS`)."""
    means = cv2.mean(rgb)[:3]
    return sum(weight * mean for weight, mean in zip(LUMA_WEIGHTS, means, strict=True)) / 255.0

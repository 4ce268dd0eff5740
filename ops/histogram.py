"""The light-change test: the distance between two frames' luma histograms, in every form.

Half the L1 distance between the normalised 32-bin Rec.709 luma histograms of two thumbnails:
0 for the same distribution of light, 1 for disjoint ones. The γ and exposure smoothers call a
scene cut above 0.35 (:func:`histogram_distance`, tensors); the CPU 8-bit paths let a moving
picture reuse an estimate within 0.1 (:func:`luma_histogram_8bit`, uint8 RGB, with the same
bins: 1.0 falls in the last one, as in ``torch.histc``).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from .colour import LUMA_WEIGHTS, luma

__all__ = [
    "HISTOGRAM_BINS",
    "SCENE_CUT",
    "histogram_distance",
    "histogram_gap",
    "histogram_distance_8bit",
    "luma_histogram",
    "luma_histogram_8bit",
    "histogram_l1",
]

HISTOGRAM_BINS = 32
SCENE_CUT = 0.35
"""The histogram distance above which two frames count as different scenes."""

_LUMA_BINS = np.array([LUMA_WEIGHTS], dtype=np.float32) * np.float32(HISTOGRAM_BINS / 255.0)


def luma_histogram(thumbnail: Tensor) -> Tensor:
    """The normalised luma histogram of an RGB tensor in [0, 1] (channels at dim −3)."""
    values = luma(thumbnail).flatten().float().clamp(0, 1)
    hist = torch.histc(values, bins=HISTOGRAM_BINS, min=0.0, max=1.0)
    return hist / hist.sum().clamp(min=1)


def histogram_distance(a: Tensor, b: Tensor) -> float:
    """Half the L1 distance between the luma histograms of two thumbnails: 0 same, 1 disjoint."""
    return histogram_gap(luma_histogram(a), luma_histogram(b))


def histogram_gap(a: Tensor, b: Tensor) -> float:
    """:func:`histogram_distance` of two thumbnails from their :func:`luma_histogram` (a caller
    that keeps one thumbnail's histogram computes it once)."""
    return 0.5 * float((a - b).abs().sum())


def luma_histogram_8bit(rgb: np.ndarray) -> np.ndarray:
    """:func:`luma_histogram` of an h×w×3 uint8 RGB frame, with OpenCV."""
    bins = np.minimum(cv2.transform(rgb.astype(np.float32), _LUMA_BINS).astype(np.int64), HISTOGRAM_BINS - 1).ravel()
    return np.bincount(bins, minlength=HISTOGRAM_BINS) / max(1, bins.size)


def histogram_l1(a: np.ndarray, b: np.ndarray) -> float:
    """Half the L1 distance between two histograms of :func:`luma_histogram_8bit`."""
    return 0.5 * float(np.abs(a - b).sum())


def histogram_distance_8bit(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`histogram_distance` of two h×w×3 uint8 RGB frames."""
    return histogram_l1(luma_histogram_8bit(a), luma_histogram_8bit(b))

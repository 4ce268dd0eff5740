"""Estimate less in video: a still picture reuses the last estimate while the light holds, and
a moving one the network's γ.

A frame reuses the whole last estimate when its thumbnail's mean stays within
:data:`REUSE_MEAN` of the estimated one's, relative, plus :data:`REUSE_MEAN_FLOOR` levels for
the noise (a fade or a light switched on re-estimates at once), and the picture stays put: no
3×3 neighbourhood of the thumbnail changed by more than :data:`REUSE_CHANGE` levels plus
:data:`REUSE_NOISE` × the measured noise, what noise alone moves such a mean by, with margin;
for at most :data:`REUSE_FRAMES` frames. The exposure tracker counts the frames that held an
estimate.

A frame that may not reuse the whole estimate — every frame of a moving picture — may still
reuse the network's γ (:func:`network_reusable`): within the same scene (luma histogram within
:data:`REUSE_HISTOGRAM`: half the L1 distance, the scene-cut test's measure, where a cut is
over 0.35) and nearly the same light (mean within :data:`REUSE_NETWORK_MEAN`, relative), for at
most :data:`REUSE_NETWORK_FRAMES` frames after the network ran. The exposure decision (gate
weight, black point, lift, the guided curve's fit to the frame's own luma) is made afresh on
such a frame, so the picture's exposure follows it as on a fully estimated frame; only the
shape of γ — which the curve's fit spreads over windows of half the picture — is held.

A moving picture is not given the whole last estimate: held for a frame or two and then
re-decided, its exposure moves in a sawtooth against the input's. Chosen on darkened CamVid
train frames (10 images made into 40-frame pans at 1 and 4 pixels a frame, 4:2:0, seed 1),
PSNR / SSIM / relative flicker (the output's frame-to-frame change of log mean luma over the
input's): a moving picture holding the whole estimate for up to 2 frames gives 23.581 / 0.8414 /
1.007 at dusk, 22.591 / 0.8326 / 1.069 through a fade (light × 0.6 in 40 frames), 24.903 /
0.7717 / 0.921 and 24.645 / 0.7620 / 0.857 at night (54 % of frames estimated); deciding every
moving frame 23.591 / 0.8413 / 0.920, 22.655 / 0.8328 / 1.064, 24.907 / 0.7717 / 0.885 and
24.653 / 0.7621 / 0.832 with the network's γ held for up to 2 frames (23.595 / 0.8414 / 0.918,
22.661 / 0.8329 / 1.063, the night rows alike, for up to 1).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from sagc.ops.guide import Curve
from sagc.ops.histogram import histogram_l1, luma_histogram_8bit

__all__ = [
    "REUSE_CHANGE",
    "REUSE_FRAMES",
    "REUSE_HISTOGRAM",
    "REUSE_MEAN",
    "REUSE_MEAN_FLOOR",
    "REUSE_NETWORK_FRAMES",
    "REUSE_NETWORK_MEAN",
    "REUSE_NOISE",
    "Estimate",
    "NetworkEstimate",
    "network_reusable",
    "reusable",
]

REUSE_MEAN = 0.005
REUSE_MEAN_FLOOR = 0.02
REUSE_CHANGE = 1.5
REUSE_NOISE = 0.5
REUSE_FRAMES = 15
REUSE_HISTOGRAM = 0.1
REUSE_NETWORK_FRAMES = 2
REUSE_NETWORK_MEAN = 0.01


@dataclass
class _Held:
    """What a held result was made from, the h×w×3 uint8 thumbnail ``small``; what later frames
    are compared with is derived from it once."""

    small: np.ndarray

    @functools.cached_property
    def mean(self) -> float:
        """The thumbnail's mean level."""
        return float(self.small.mean())

    @functools.cached_property
    def histogram(self) -> np.ndarray:
        """The thumbnail's luma histogram."""
        return luma_histogram_8bit(self.small)


@dataclass
class Estimate(_Held):
    """γ's curve as estimated from the thumbnail ``small`` (None: the gate left the frame
    alone), the gate's weight, the frames that reused it and the frame's nightness
    (:meth:`~sagc.models.gate.ExposureGate.nightness`: how much night noise reduction it gets)."""

    curve: Curve | None
    weight: float
    age: int = 0
    night: float = 0.0


def reusable(last: Estimate | None, small: np.ndarray, *, noise: float) -> Estimate | None:
    """``last``, one frame older, when the thumbnail ``small`` may reuse it (module docstring;
    ``noise`` is the last measured noise in 8-bit levels); else None."""
    if last is None or last.age >= REUSE_FRAMES or last.small.shape != small.shape:
        return None
    mean = float(small.mean())
    if abs(mean - last.mean) > REUSE_MEAN * last.mean + REUSE_MEAN_FLOOR:
        return None
    change = float(cv2.blur(cv2.absdiff(small, last.small), (3, 3)).max())
    if change > REUSE_CHANGE + REUSE_NOISE * noise:  # the picture moved
        return None
    last.age += 1
    return last


@dataclass
class NetworkEstimate(_Held):
    """The network's γ for the thumbnail ``small`` (the 1×3×h×w tensor it returned), and the
    frames since (the stage counts them, estimated or not)."""

    gamma: torch.Tensor
    age: int = 0


def network_reusable(last: NetworkEstimate | None, small: np.ndarray) -> NetworkEstimate | None:
    """``last`` when the thumbnail ``small``, ``last.age`` frames later, may reuse its γ
    (module docstring); else None."""
    if last is None or last.age > REUSE_NETWORK_FRAMES or last.small.shape != small.shape:
        return None
    if abs(float(small.mean()) - last.mean) > REUSE_NETWORK_MEAN * last.mean + REUSE_MEAN_FLOOR:
        return None
    if histogram_l1(luma_histogram_8bit(small), last.histogram) > REUSE_HISTOGRAM:
        return None
    return last

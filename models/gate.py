"""The exposure decision: leave well-exposed frames alone, lift dark ones to a normal exposure.

An unpaired enhancer learns to lift dark pictures, and a trunk that sees 3×3 neighbourhoods of a
downscaled frame cannot tell a well-exposed street from a dark one reliably: on its own it
brightens both. The gate looks at the whole low-resolution frame, which the enhancer makes
anyway, and decides two things per frame:

**How under-exposed it is.** Three whole-frame statistics of the luma Y — log₂ of its mean, its
median and its 95th percentile — go into a logistic model of the odds that the frame is an
under-exposed capture rather than a normal one::

    p = sigmoid(c · (log₂ mean Y, log₂ median Y, log₂ Y₉₅) + b)

fitted on training images only (``tools/fit_exposure_gate.py``): normal light is the CamVid
train originals, the SICE images brighter than 0.4 mean luma and contrast-reduced copies of both
(overcast, hazy and flat daylight, which has no highlights and must still count as normal); low
light is the CamVid train frames darkened with the ISSR recipe at dusk and at night level and
the SICE images darker than 0.2. The enhancement weight rises from 0 at the model's own decision
boundary (``p`` = 0.5) to 1 at odds of 4:1 (``p`` = 0.8)::

    w = ramp(p; 0.5 → 0.8),    γ' = 1 − w · (1 − γ)

so a frame the model calls normal comes back unchanged, and ``w`` also scales the noise
reduction.

**How far to lift it.** The network's γ sets the shape of the tone curve; where it leaves a dark
frame's low-resolution mean luma below ``target``, γ is scaled by ``2^−s`` (``s`` stops, found
by bisection, never below 0) until the output's mean luma reaches it — a camera's auto-exposure
on top of the learned local curve. Deep night, which the network alone lifts only half way,
comes up to a normal level; frames the network already lifts enough are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sagc.ops.colour import luma
from sagc.ops.exposure import quantiles

__all__ = ["FEATURES", "ExposureGate", "exposure_features"]

FEATURES = ("log2 mean luma", "log2 median luma", "log2 95th-percentile luma")
_LOG_FLOOR = 1e-3  # luma is clamped here before the log
_LIFT_STEPS = 12  # bisection steps for the lift: 2^-12 of its range (4 stops / 4096)
_MAX_LIFT = 4.0  # stops


def exposure_features(small: Tensor) -> Tensor:
    """N×3 features of an N×3×h×w low-resolution RGB frame in [0, 1]: :data:`FEATURES`."""
    values = luma(small.float()).flatten(1)
    stats = torch.stack([values.mean(1), *quantiles(values, (0.5, 0.95))], dim=1)
    return torch.log2(stats.clamp(min=_LOG_FLOOR))


def _may_branch(x: Tensor) -> bool:
    """True where a decision on a tensor's value may leave the graph: on the CPU, outside
    tracing and export (CUDA graphs and exported graphs keep one path)."""
    return x.device.type == "cpu" and not (torch.jit.is_tracing() or torch.compiler.is_compiling())


def _ramp(value: Tensor, low: float, high: float) -> Tensor:
    return ((value - low) / (high - low)).clamp(0.0, 1.0)


@dataclass(frozen=True)
class ExposureGate:
    """Per-image enhancement weight and lift from a low-resolution N×3×h×w image in [0, 1].

    ``coefficients`` and ``bias`` are the logistic model over :data:`FEATURES`; ``odds`` the
    probabilities where enhancement starts and becomes full; ``target`` the mean luma a fully
    enhanced frame's output is lifted to at least (0 turns the lift off).
    """

    coefficients: tuple[float, float, float] = (-0.9689, -2.3857, -0.7967)
    bias: float = -8.1912
    odds: tuple[float, float] = (0.5, 0.8)
    target: float = 0.35
    night: tuple[float, float] = (0.08, 0.16)

    def __post_init__(self) -> None:
        low, high = self.odds
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"gate odds must rise within [0, 1] (start < full), got {self.odds}")
        if len(self.coefficients) != len(FEATURES):
            raise ValueError(f"gate needs {len(FEATURES)} coefficients ({', '.join(FEATURES)})")
        if not 0.0 <= self.night[0] < self.night[1] <= 1.0:
            raise ValueError(f"gate night must be a mean-luma range within [0, 1] (full < off), got {self.night}")
        if not 0.0 <= self.target < 1.0:
            raise ValueError(f"gate target must be in [0, 1), got {self.target}")

    def probability(self, small: Tensor) -> Tensor:
        """Shape N: the model's probability that each image is under-exposed."""
        features = exposure_features(small)
        weights = features.new_tensor(self.coefficients)
        return torch.sigmoid(features @ weights + self.bias)

    def __call__(self, small: Tensor) -> Tensor:
        """Weights of shape N (float32): 1 enhances fully, 0 leaves the image as it is."""
        return _ramp(self.probability(small), *self.odds)

    def nightness(self, small: Tensor) -> Tensor:
        """Shape N (float32): 1 for a frame darker than ``night[0]`` mean luma, 0 above
        ``night[1]``, linear between: how much of the lift (and of the black point,
        :mod:`sagc.ops.black`) applies."""
        return 1.0 - _ramp(luma(small.float()).mean((1, 2, 3)), *self.night)

    def lift(self, small: Tensor, gamma: Tensor) -> Tensor:
        """Stops ``s`` ≥ 0 per image (shape N) such that ``small ** (γ · 2^−s)`` (γ capped at 1)
        has mean luma ``target``, or 0 where ``small ** γ`` already reaches it."""
        if self.target == 0.0:
            return gamma.new_zeros(gamma.shape[0], dtype=torch.float32)
        log_x = torch.log(small.float().clamp(min=1e-4))
        gamma = gamma.float()
        target = self.target * self.nightness(small)

        def mean_luma(stops: Tensor) -> Tensor:
            scaled = (gamma * torch.exp2(-stops).view(-1, 1, 1, 1)).clamp(max=1.0)
            return luma(torch.exp(scaled * log_x)).mean((1, 2, 3))

        low = gamma.new_zeros(gamma.shape[0])
        high = torch.full_like(low, _MAX_LIFT)
        short = mean_luma(low) < target
        if _may_branch(small) and not bool(short.any()):
            return low  # nothing to lift: the bisection would find 0 everywhere
        for _ in range(_LIFT_STEPS):
            middle = 0.5 * (low + high)
            enough = mean_luma(middle) >= target
            high = torch.where(enough, middle, high)
            low = torch.where(enough, low, middle)
        return torch.where(short, high, torch.zeros_like(high))

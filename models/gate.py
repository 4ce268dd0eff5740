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

**How noisy it is for its level.** Less light leaves fewer photons per pixel, so a capture's
noise relative to its signal grows as the light falls; a normal exposure of a bright scene and
a darkened one at the same mean luma differ in it where their brightness statistics agree. The
frame's noise level (Immerkær's estimator on its full-resolution luma,
:func:`~sagc.ops.denoise.noise_level`) over its mean luma is a third piece of evidence, its
log-odds a straight line in the log of that ratio (``noise``: slope and offset, fitted on CamVid
train originals against the same frames darkened at dusk and night level, given the gate's own
log-odds on each frame, so the line weighs what the noise adds to the brightness statistics;
``tools/fit_exposure_gate.py``). It joins where the content cue does (:mod:`sagc.models.cue`):
log-odds add. Fine texture reads as a little noise, so it is evidence, not a decision.

**Where to expose it.** Less light scales a capture's values down (the camera's power-law tone
curve keeps a scale a scale), so a frame's luma statistics over its white — the 99th percentile
of its low-resolution largest channel (:func:`~sagc.ops.exposure.headroom`; a blue sky's luma is
far below its blue) — are nearly the same at dusk and at deep night: they say what the scene is,
not how much light there was. A bright overcast street has a high mean over its white, a dusk
street under a bright sky a low one; how the levels spread below the white (its 5th to 95th
percentiles over it) tells a scene lit throughout from one whose white is a small bright part.
The target mean luma of the output is a log-linear model of those ratios
(:func:`target_features`, :data:`TARGET_FEATURES`)::

    target = clamp(2^(a · log₂(statistics of Y / white) + b), low, high)

with the coefficients ``a`` and the offset ``b`` fitted by least squares on training frames
(CamVid and mid-exposure SICE images) darkened at dusk and night levels against their clean mean
luma (``tools/fit_exposure_gate.py``). The network's γ sets the shape of the tone curve; the frame
is exposed by ``s`` stops (found by bisection; never darker than the input) until the output's
mean luma reaches the target — a camera's auto-exposure, metered by content, on top of the
learned curve. Up to the white the stops are a gain before the exponent, which keeps shadows
where they belong against the highlights; past it, and below 0, they scale γ
(:func:`~sagc.ops.exposure.exposure_levels`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sagc.ops.black import toe
from sagc.ops.colour import LUMA_WEIGHTS, luma
from sagc.ops.exposure import exposure_levels, headroom, host_eager, quantiles

__all__ = ["FEATURES", "TARGET_FEATURES", "TARGET_QUANTILES", "ExposureGate", "exposure_features", "target_features"]

FEATURES = ("log2 mean luma", "log2 median luma", "log2 95th-percentile luma")
TARGET_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
TARGET_FEATURES = (
    "log2 mean luma / white",
    *(f"log2 {round(100 * q)}th-percentile luma / white" for q in TARGET_QUANTILES),
)
_LOG_FLOOR = 1e-3  # luma is clamped here before the log
_LIFT_STEPS = 11  # bisection steps for the lift: 2^-11 of its range (12 stops / 2048)
_SUBSAMPLE_FROM = 8192  # thumbnails of this many pixels or more are metered on every 2nd row and column
_MAX_LIFT = 6.0  # stops, either way
_TINY = 1e-4  # levels are clamped here before the exponent
_NOISE_FLOOR = 1.0 / 255.0  # the mean luma and the noise ratio are clamped here before the ratio and its log
NOISE_PACKAGED = (4.7236, 15.4252)  # tools/fit_exposure_gate.py on CamVid train
# tools/fit_exposure_gate.py on CamVid train and SICE: coefficients of TARGET_FEATURES, offset
EXPOSURE_PACKAGED = (0.3271, -0.1389, 0.2091, 0.0700, 0.1333, 0.4113, -0.2024)


def _luma_statistics(small: Tensor, qs: tuple[float, ...]) -> Tensor:
    """N×(1 + len(qs)) (float32): each low-resolution frame's mean luma and its luma ``qs``
    quantiles."""
    values = luma(small.float()).flatten(1)
    return torch.stack([values.mean(1), *quantiles(values, qs)], dim=1)


def exposure_features(small: Tensor) -> Tensor:
    """N×3 features of an N×3×h×w low-resolution RGB frame in [0, 1]: :data:`FEATURES`."""
    return torch.log2(_luma_statistics(small, (0.5, 0.95)).clamp(min=_LOG_FLOOR))


def target_features(small: Tensor, *, white: Tensor | None = None) -> Tensor:
    """N×k (float32): :data:`TARGET_FEATURES` of each low-resolution N×3×h×w frame, its mean
    luma and luma quantiles over its white (:func:`~sagc.ops.exposure.headroom`, or ``white``
    where the caller has it), each within [10⁻³, 1] before the log: nearly independent of the
    light the frame was captured in."""
    white = headroom(small) if white is None else white
    stats = _luma_statistics(small, TARGET_QUANTILES)
    return torch.log2((stats / white.float().view(-1, 1)).clamp(_LOG_FLOOR, 1.0))


def _ramp(value: Tensor, low: float, high: float) -> Tensor:
    return ((value - low) / (high - low)).clamp(0.0, 1.0)


@dataclass(frozen=True)
class ExposureGate:
    """Per-image enhancement weight and lift from a low-resolution N×3×h×w image in [0, 1].

    ``coefficients`` and ``bias`` are the logistic model over :data:`FEATURES`; ``odds`` the
    probabilities where enhancement starts and becomes full; ``exposure`` the coefficients of
    the target mean luma's log₂ on :data:`TARGET_FEATURES` and its offset (:meth:`target`;
    None: γ is used as the network gives it, no lift) and ``limits`` the range the target is
    kept in; ``night`` the mean-luma range over which :meth:`nightness` falls from 1 to 0;
    ``noise`` the slope and offset of the log-odds of the frame's noise over its mean luma
    (:meth:`noise_evidence`; None: no such evidence).
    """

    coefficients: tuple[float, float, float] = (-0.9689, -2.3857, -0.7967)
    bias: float = -8.1912
    odds: tuple[float, float] = (0.5, 0.8)
    exposure: tuple[float, ...] | None = EXPOSURE_PACKAGED
    limits: tuple[float, float] = (0.1, 0.6)
    night: tuple[float, float] = (0.08, 0.16)
    noise: tuple[float, float] | None = NOISE_PACKAGED

    def __post_init__(self) -> None:
        low, high = self.odds
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"gate odds must rise within [0, 1] (start < full), got {self.odds}")
        if len(self.coefficients) != len(FEATURES):
            raise ValueError(f"gate needs {len(FEATURES)} coefficients ({', '.join(FEATURES)})")
        if not 0.0 <= self.night[0] < self.night[1] <= 1.0:
            raise ValueError(f"gate night must be a mean-luma range within [0, 1] (full < off), got {self.night}")
        if self.exposure is not None and (
            len(self.exposure) != len(TARGET_FEATURES) + 1 or not all(math.isfinite(v) for v in self.exposure)
        ):
            raise ValueError(
                f"gate exposure must be {len(TARGET_FEATURES)} coefficients ({', '.join(TARGET_FEATURES)}) "
                f"and an offset, finite, got {self.exposure}"
            )
        if self.noise is not None and (len(self.noise) != 2 or not all(math.isfinite(v) for v in self.noise)):
            raise ValueError(f"gate noise must be (slope, offset), finite, got {self.noise}")
        if not 0.0 < self.limits[0] <= self.limits[1] < 1.0:
            raise ValueError(f"gate limits must be a mean-luma range within (0, 1) (low <= high), got {self.limits}")

    def probability(self, small: Tensor) -> Tensor:
        """Shape N: the model's probability that each image is under-exposed."""
        features = exposure_features(small)
        weights = features.new_tensor(self.coefficients)
        return torch.sigmoid(features @ weights + self.bias)

    def __call__(self, small: Tensor) -> Tensor:
        """Weights of shape N (float32): 1 enhances fully, 0 leaves the image as it is."""
        return self.weight_of(self.probability(small))

    def weight_of(self, probability: Tensor) -> Tensor:
        """The weight for a :meth:`probability`: 0 up to ``odds[0]``, 1 from ``odds[1]``, linear between."""
        return _ramp(probability, *self.odds)

    def noise_evidence(self, small: Tensor, noise: Tensor | None) -> Tensor | None:
        """Shape N (float32): the log-odds that each frame is under-exposed from its ``noise``
        (shape N: the σ of its full-resolution luma, in the units of ``small``) over the mean
        luma of its low-resolution frame ``small``; None without ``noise`` or a model for it."""
        if noise is None or self.noise is None:
            return None
        slope, offset = self.noise
        ratio = noise.float() / luma(small.float()).mean((1, 2, 3)).clamp(min=_NOISE_FLOOR)
        return slope * torch.log(ratio.clamp(min=_NOISE_FLOOR)) + offset

    def nightness(self, small: Tensor) -> Tensor:
        """Shape N (float32): 1 for a frame darker than ``night[0]`` mean luma, 0 above
        ``night[1]``, linear between: how much of the black point (:mod:`sagc.ops.black`)
        applies."""
        return 1.0 - _ramp(luma(small.float()).mean((1, 2, 3)), *self.night)

    def target(self, small: Tensor, *, white: Tensor | None = None) -> Tensor:
        """Shape N (float32): the mean luma each low-resolution frame's output is exposed to,
        ``2^(a · f + b)`` of its :func:`target_features` ``f`` (``white``: its headroom, where
        the caller has it; see the module), within ``limits``; zeros without ``exposure``."""
        if self.exposure is None:
            return small.new_zeros(small.shape[0], dtype=torch.float32)
        *weights, offset = self.exposure
        features = target_features(small, white=white)
        return torch.exp2(features @ features.new_tensor(weights) + offset).clamp(*self.limits)

    def lift(
        self,
        small: Tensor,
        gamma: Tensor,
        *,
        black: Tensor | None = None,
        target: Tensor | None = None,
        white: Tensor | None = None,
    ) -> Tensor:
        """Stops ``s`` per image (shape N, within ±6) such that ``small`` exposed by ``s`` on
        top of ``gamma`` (:func:`~sagc.ops.exposure.exposure_levels`), through the toe of its
        ``black`` point where the gain puts it (:class:`~sagc.ops.black.Levels`), has mean luma
        ``target`` (default :meth:`target` of ``small``); where even γ = 1 leaves the frame
        brighter, the lowest ``s``; 0 everywhere without ``exposure``. ``white``: the frame's
        headroom (:func:`~sagc.ops.exposure.headroom`), where the caller has it. The search
        bisects 12 stops 11 times; on the CPU outside export and autograd it runs in NumPy with
        the same arithmetic (:func:`~sagc.ops.exposure.host_eager`; the tensor ops' dispatch
        costs more than their arithmetic at thumbnail size)."""
        if self.exposure is None:
            return gamma.new_zeros(gamma.shape[0], dtype=torch.float32)
        white = headroom(small) if white is None else white
        target = self.target(small, white=white) if target is None else target.float()
        room = -torch.log2(white)
        stride = 2 if small.shape[-2] * small.shape[-1] >= _SUBSAMPLE_FROM else 1  # the mean of every 4th is as good
        x, gamma = small[..., ::stride, ::stride].float(), gamma[..., ::stride, ::stride].float()
        black = x.new_zeros(x.shape[0]) if black is None else black.float()
        # the toe of black point b·g on min(1, g·x) is c(g) = g(1 + b²g²)/(1 + b²) times the toe
        # of b on x, capped at 1, so its log is log toe(x) + log c(g), capped at 0 (toe(1) = 1):
        # one log before the search, none in it (:func:`~sagc.ops.black.toe`)
        log_toe = torch.log(toe(x, black).clamp(min=1e-12))
        if host_eager(log_toe, gamma, room, target):
            arrays = (t.detach().numpy() for t in (log_toe, gamma, black, room, target))
            return torch.from_numpy(_bisect_lift(*arrays))
        b2 = black.square()

        def mean_luma(stops: Tensor) -> Tensor:
            exponent, gain = exposure_levels(gamma, x, stops, room=room)
            log_scale = torch.log(gain * (1.0 + b2 * gain.square()) / (1.0 + b2)).view(-1, 1, 1, 1)
            levels = (log_toe + log_scale).clamp(math.log(_TINY), 0.0)
            return luma(torch.exp(levels * exponent).mean((2, 3), keepdim=True)).flatten()

        low = torch.full_like(target, -_MAX_LIFT)
        high = torch.full_like(target, _MAX_LIFT)
        for _ in range(_LIFT_STEPS):
            middle = 0.5 * (low + high)
            enough = mean_luma(middle) >= target
            high = torch.where(enough, middle, high)
            low = torch.where(enough, low, middle)
        return high


def _bisect_lift(
    log_toe: np.ndarray, gamma: np.ndarray, black: np.ndarray, room: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """:meth:`ExposureGate.lift`'s search on the host, one image at a time with Python numbers
    for its per-image values (the same arithmetic, a tenth of the tensor ops' dispatch)."""
    stops = np.empty(target.shape, np.float32)
    floor = math.log(_TINY)
    weights = np.asarray(LUMA_WEIGHTS, np.float32)
    for i in range(target.shape[0]):
        toe_i, gamma_i = log_toe[i], gamma[i]
        levels, exponent = np.empty(toe_i.shape, np.float32), np.empty(gamma_i.shape, np.float32)
        b2, headroom_stops, wanted = float(black[i]) ** 2, float(room[i]), float(target[i])
        low, high = -_MAX_LIFT, _MAX_LIFT
        for _ in range(_LIFT_STEPS):
            middle = 0.5 * (low + high)
            gain_stops = min(max(middle, 0.0), headroom_stops)
            gain = 2.0**gain_stops
            np.add(toe_i, math.log(gain * (1.0 + b2 * gain * gain) / (1.0 + b2)), out=levels)
            np.clip(levels, floor, 0.0, out=levels)
            np.minimum(np.multiply(gamma_i, 2.0 ** (gain_stops - middle), out=exponent), 1.0, out=exponent)
            np.exp(np.multiply(levels, exponent, out=levels), out=levels)
            if float(weights @ levels.reshape(3, -1).mean(1)) >= wanted:
                high = middle
            else:
                low = middle
        stops[i] = high
    return stops

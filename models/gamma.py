"""The SAGC gamma estimator, the gamma operator and the full-frame ``Enhancer``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sagc.ops.black import Levels, black_level, toe
from sagc.ops.denoise import noise_level, reduce_noise
from sagc.ops.downscale import downscale, low_resolution_size
from sagc.ops.estimator import GammaEstimator
from sagc.ops.exposure import (
    exponent_of_normalised,
    exposure_levels,
    headroom,
    host_eager,
    normalise_exposure,
    white_point,
)
from sagc.ops.gamma import DEFAULT_EPS, ApplyGamma, apply_gamma
from sagc.ops.guide import guided_gamma

from .cue import ContentCue
from .gate import ExposureGate
from .settings import RuntimeSettings

__all__ = ["DEFAULT_EPS", "GammaEstimator", "ApplyGamma", "Enhancer", "apply_gamma"]
ExposureFilter = Callable[..., tuple[Tensor, ...]]
"""``(weight, None, black, room, log₂ target, low-res input, solve=) → (weight, stops, black,
room, log₂ target)``: a filter of the gate's per-image decision, the black point, the headroom in
stops and the log₂ of the exposure target; the exposure is ``solve(black, room, log₂ target)``
for the levels it gives."""


def _check_image(x: Tensor, name: str = "x") -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be an N×3×H×W RGB tensor, got shape {list(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got {x.dtype}")


class Enhancer(nn.Module):
    """Run-time gain → γ estimated at 1/``scale`` resolution → bilinear upsample → ``x ** γ``.

    ``denoise`` > 0 (ours) reduces noise before the exponent is applied: a 5×5 bilateral filter
    over the full-resolution input whose colour σ is ``denoise`` times the noise level measured
    in that image (:mod:`sagc.ops.denoise`), so a clean picture is left nearly alone and a
    noisy one is smoothed before brightening would amplify its noise; frames the gate counts as
    night get a second, lighter pass and their colour blurred by how far into night they are
    (:func:`~sagc.ops.denoise.night_filter`). γ is still estimated from
    the unfiltered, downscaled input. ``gate`` (ours, :class:`~sagc.models.gate.ExposureGate`)
    scales the enhancement and the noise reduction of each image down to nothing where the
    low-resolution frame shows it is already well exposed. Pure tensor in, tensor out: float
    RGB in [0, 1], N×3×H×W; device and dtype follow the input.
    """

    def __init__(
        self,
        estimator: GammaEstimator,
        settings: RuntimeSettings | None = None,
        *,
        eps: float = DEFAULT_EPS,
        content_cue: ContentCue | None = None,
        **changes: Any,
    ) -> None:
        """``settings`` (default: all off), with ``changes`` to single fields (``scale=8``) applied.
        ``content_cue`` (:mod:`sagc.models.cue`; None: the gate's statistics alone) joins the
        exposure decision; :func:`~sagc.models.checkpoint.load_enhancer` gives the packaged one."""
        super().__init__()
        self.estimator = estimator
        self.exposure_gate = ExposureGate()
        self.content_cue = content_cue
        self.eps = float(eps)
        self.settings = (settings or RuntimeSettings()).replace(**changes)

    @property
    def settings(self) -> RuntimeSettings:
        """The run-time settings; assign a new :class:`RuntimeSettings` to change them."""
        return self._settings

    @settings.setter
    def settings(self, value: RuntimeSettings) -> None:
        if not isinstance(value, RuntimeSettings):
            raise TypeError(f"settings must be RuntimeSettings, got {type(value).__name__}")
        self._settings = value

    @property
    def scale(self) -> float:
        return self._settings.scale

    @property
    def gain(self) -> float:
        return self._settings.gain

    @property
    def denoise(self) -> float:
        return self._settings.denoise

    @property
    def guide(self) -> float:
        return self._settings.guide

    @property
    def white_point(self) -> bool:
        """Whether the estimator sees frames normalised to their white point (:mod:`sagc.ops.exposure`)."""
        return bool(getattr(getattr(self.estimator, "module", self.estimator), "white_point", False))

    @property
    def gate(self) -> ExposureGate | None:
        """The exposure gate when it is on, else None."""
        return self.exposure_gate if self._settings.gate else None

    @property
    def weighs_noise(self) -> bool:
        """Whether the exposure decision takes the frame's noise as evidence: the gate is on and
        has a model for it (:meth:`~sagc.models.gate.ExposureGate.noise_evidence`)."""
        return self.gate is not None and self.exposure_gate.noise is not None

    def gate_weight(self, small: Tensor, *, evidence: Tensor | None = None) -> Tensor:
        """Shape N (float32): the exposure gate's weight for each low-resolution frame, raised
        by the :attr:`content_cue`'s evidence and ``evidence`` (further log-odds per frame: the
        gate's :meth:`~sagc.models.gate.ExposureGate.noise_evidence`) where the gate hesitates
        (no cue: the gate alone; :meth:`~sagc.models.cue.ContentCue.weight`). Needs the gate on."""
        gate = self.gate
        assert gate is not None
        if self.content_cue is None:
            return gate(small)
        return self.content_cue.weight(small, gate.probability(small), weight_of=gate.weight_of, evidence=evidence)

    def low_resolution_size(self, height: int, width: int) -> tuple[int, int]:
        """Size at which γ is estimated for an input of ``height`` × ``width``."""
        return low_resolution_size(height, width, scale=self.scale)

    def prepare(self, x: Tensor) -> Tensor:
        """Apply the run-time gain (clamped back into [0, 1])."""
        if self.gain == 1.0:
            return x
        return torch.clamp(x * self.gain, 0.0, 1.0)

    def estimate(self, x: Tensor) -> Tensor:
        """γ map at the low estimation resolution for a gain-adjusted input ``x`` (gated)."""
        return self.gamma(x if self.scale == 1.0 else self.downscale(x))[0]

    def gamma(
        self,
        small: Tensor,
        *,
        exposure: ExposureFilter | None = None,
        estimator: Callable[[Tensor], Tensor] | None = None,
        noise: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None, Levels | None]:
        """γ for a low-resolution (gain-adjusted) input, the per-image enhancement weight of
        the gate (None without one) and the frame's :class:`~sagc.ops.black.Levels` before the
        exponent (the gate's exposure gain and the black point; None when neither is on).
        The network sees ``small`` through the toe of its black point (:mod:`sagc.ops.black`).
        With the gate, the frame is exposed to the target the gate meters on ``small``
        (:meth:`~sagc.models.gate.ExposureGate.lift`: a gain in the levels, the rest in γ), and
        γ and the gain are scaled by that weight (``γ' = 1 − w · (1 − γ)``, ``gain^w``); then
        γ is compensated by ``ev`` stops: ``min(1, γ · 2^−ev)`` (the output's log halves per
        stop up; never darker than the input). ``exposure(weight, None, black, room, log₂
        target, small, solve=...)`` (e.g. a :class:`~sagc.stream.enhance.smoothing.ExposureTracker`)
        may filter the gate's per-image weight, black point, headroom (in stops) and the log₂ of
        its exposure target over time before they are applied, and returns them with the
        exposure, which ``solve(black, room, log₂ target)`` (the gate's lift) gives for the
        values it filtered, and which it may filter too.
        ``estimator`` runs the network in place of :attr:`estimator` (the same network on
        another runtime). ``noise``: each frame's noise level (shape N, the σ of its
        full-resolution luma in the units of ``small``), the gate's further evidence
        (:meth:`~sagc.models.gate.ExposureGate.noise_evidence`; None: without it)."""
        network = estimator or self.estimator
        evidence = None if self.gate is None else self.gate.noise_evidence(small, noise)
        black = self.black_point(small, evidence=evidence)
        seen = small if black is None else toe(small, black)
        if self.white_point:
            white = white_point(seen)
            gamma = exponent_of_normalised(network(normalise_exposure(seen, white)), seen, white)
        else:
            gamma = network(seen)
        weight = gain = None
        if self.gate is not None:
            weight = self.gate_weight(seen, evidence=evidence)
            white = headroom(small)  # the white: metered once, used thrice
            room = own_room = -torch.log2(white)
            if exposure is None:
                stops = self.gate.lift(small, gamma, black=black, white=white)
            else:  # the exposure is solved for the black point and headroom as the filter gives them
                # metered on the frame's own white; a level of the scene, not of the light, so the
                # filter may smooth it as it smooths the levels
                target = self.gate.target(small, white=white)
                own_target = torch.log2(target)
                curve, toed = gamma, black is not None  # as they are now (the names are reused below)

                def solve(point: Tensor, headroom_stops: Tensor, log_target: Tensor) -> Tensor:
                    levels_white = white if headroom_stops is own_room else torch.exp2(-headroom_stops)
                    level = target if log_target is own_target else torch.exp2(log_target)
                    return self.gate.lift(small, curve, black=point if toed else None, target=level, white=levels_white)

                point = weight.new_zeros(weight.shape) if black is None else black
                weight, stops, point, room, _ = exposure(weight, None, point, room, own_target, small, solve=solve)
                black = None if black is None else point
            gamma, gain = exposure_levels(gamma, small, stops, room=room)
            w = weight.float()
            gamma = 1.0 - w.to(gamma.dtype).view(-1, 1, 1, 1) * (1.0 - gamma)
            gain = gain**w
        if self._settings.ev:
            gamma = (gamma * 2.0**-self._settings.ev).clamp(max=1.0)
        if black is None and gain is None:
            return gamma, weight, None
        ones = small.new_ones(small.shape[0], dtype=torch.float32)
        gain = ones if gain is None else gain
        black = torch.zeros_like(ones) if black is None else black.float()
        return gamma, weight, Levels(black * gain, gain)

    def black_point(self, small: Tensor, *, evidence: Tensor | None = None) -> Tensor | None:
        """Shape N: each frame's black point (:mod:`sagc.ops.black`) from its low-resolution
        (gain-adjusted) input, scaled by how far the frame is into night
        (:meth:`~sagc.models.gate.ExposureGate.nightness`; also with the gate off, so a bright
        frame keeps its blacks) and by the gate's weight (:meth:`gate_weight` with
        ``evidence``); None when ``black`` is off."""
        if not self._settings.black:
            return None
        weight = self.exposure_gate.nightness(small)
        if host_eager(weight) and not bool(weight.any()):  # no frame in the night range: zeros, unmeasured
            return torch.zeros_like(weight)
        if self.gate is not None:
            weight = weight * self.gate_weight(small, evidence=evidence)
        return black_level(small, fraction=self._settings.black, weight=weight)

    def downscale(self, x: Tensor) -> Tensor:
        """Area-average ``x`` to the estimation size (:func:`sagc.ops.downscale.downscale`)."""
        return downscale(x, scale=self.scale)

    def apply(
        self,
        x: Tensor,
        gamma: Tensor,
        weight: Tensor | None = None,
        *,
        small: Tensor | None = None,
        levels: Levels | None = None,
        night: Tensor | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """Reduce ``x``'s noise (when ``denoise`` > 0; times the gate's per-image ``weight``),
        put it through its ``levels`` (:meth:`gamma`: the exposure gain, then the toe of the
        black point), upsample a (possibly low-resolution) γ map to its size and apply it. γ
        should come from the unfiltered ``x``; with ``guide`` > 0 the upsampling follows the
        filtered ``x``'s log luma (:mod:`sagc.ops.guide`), fitted on ``small``, the
        low-resolution frame γ was estimated from (made from ``x`` when not given; with
        ``levels``, already through them). ``night``: each image's nightness
        (:meth:`~sagc.models.gate.ExposureGate.nightness` of its low-resolution frame), how much
        of the night noise reduction it gets (:func:`~sagc.ops.denoise.night_filter`; none
        when not given). ``noise``: ``x``'s :func:`~sagc.ops.denoise.noise_level` where it was
        measured already."""
        filtered = reduce_noise(x, strength=self.denoise, weight=weight, night=night, noise=noise)
        if levels is not None:
            filtered = levels(filtered)
        if self.guide > 0.0:
            if small is None:
                small = x if self.scale == 1.0 else self.downscale(x)
                small = small if levels is None else levels(small)
            gamma = guided_gamma(gamma, small, filtered, fraction=self.guide)
        elif self.scale != 1.0 or gamma.shape[-2:] != x.shape[-2:]:
            gamma = F.interpolate(gamma, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return apply_gamma(filtered, gamma, eps=self.eps)

    def forward(
        self,
        x: Tensor,
        *,
        smoother: Callable[[Tensor, Tensor], Tensor] | None = None,
        exposure: ExposureFilter | None = None,
        prefilter: Callable[[Tensor, Tensor | None], Tensor] | None = None,
    ) -> Tensor:
        """Enhance ``x``; ``smoother(γ, low-res input, night=nightness)`` (e.g. a
        :class:`~sagc.stream.enhance.smoothing.GammaSmoother`) may filter γ over time before it is
        applied, ``exposure`` the gate's decision (see :meth:`gamma`), and ``prefilter(x, gate
        weight)`` (e.g. a :class:`~sagc.ops.temporal_denoise.TemporalDenoiser`) the
        full-resolution input before the noise reduction and the exponent."""
        _check_image(x)
        x = self.prepare(x)
        small = x if self.scale == 1.0 else self.downscale(x)
        noise = noise_level(x) if self.weighs_noise else None
        gamma, weight, levels = self.gamma(small, exposure=exposure, noise=noise)
        night = self.exposure_gate.nightness(small) if self.denoise > 0.0 or smoother is not None else None
        if levels is not None:
            small = levels(small)
        if prefilter is not None:
            x = prefilter(x, weight)
        if smoother is not None:
            gamma = smoother(gamma, small, night=night)
        measured = noise if prefilter is None else None  # a prefilter changes the noise the filter sees
        return self.apply(x, gamma, weight, small=small, levels=levels, night=night, noise=measured)

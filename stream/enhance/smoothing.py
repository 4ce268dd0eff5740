"""Temporal smoothing: of the low-resolution γ map (an exponential moving average per pixel) and
of the exposure decision (one per frame).

Both reset on scene cuts (luma-histogram distance between consecutive thumbnails), and optionally
motion-aware: where the thumbnail changed, the new estimate counts more, so moving objects do
not drag a trail of stale γ behind them.

At night γ's smoothing weighs the past more: a night thumbnail's noise moves the network's γ
from one estimate to the next while the scene holds, and every such move brightens or darkens
the whole output. A frame's nightness ``n`` (:meth:`~sagc.models.gate.ExposureGate.nightness`,
1 below mean luma 0.08, 0 above 0.16) raises the weight of the past from ``alpha`` towards
:data:`NIGHT_SMOOTH`: ``alpha + n · (max(alpha, NIGHT_SMOOTH) − alpha)``. Frames in daylight and
at dusk (``n`` = 0) are smoothed as the settings say. Chosen on darkened CamVid train frames made
into pans (``tools/choose_temporal.py``: 12 images, 1 and 4 pixels a frame, seed 1): PSNR within
0.03 dB of no night smoothing at both light ranges with 0.8 and 0.9, the relative flicker alike;
raising the exposure decision's weight of the past at night as well (0.95, 0.98) cost 0.09 and
0.16 dB on the 4-pixel pans at the default light range, so the decision is followed as by day.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from sagc.ops.colour import luma
from sagc.ops.exposure import host_eager
from sagc.ops.histogram import SCENE_CUT, histogram_gap, luma_histogram

__all__ = ["NIGHT_SMOOTH", "ExposureTracker", "GammaSmoother"]

NIGHT_SMOOTH = 0.8
"""γ's weight of the past at full night (the preview's smoothing toggle's value)."""


def _at_night(alpha: float, night_alpha: float, night: Tensor | None) -> Tensor | float:
    """The weight of the past at nightness ``night`` (shape N; None: ``alpha``)."""
    if night is None:
        return alpha
    return alpha + night.float().clamp(0.0, 1.0) * (max(alpha, night_alpha) - alpha)


def _nothing(alpha: Tensor | float) -> bool:
    """Whether a weight of the past is 0 for every image (checked on the host only: a device's
    weights are used as they are)."""
    if isinstance(alpha, Tensor):
        return host_eager(alpha) and not bool(alpha.any())
    return alpha == 0.0


class _SceneFollower:
    """What both smoothers share: the previous thumbnail and the scene-cut test."""

    def __init__(self, alpha: float, what: str, cut_threshold: float) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"{what} alpha must be in [0, 1), got {alpha}")
        self.alpha, self.cut_threshold = alpha, cut_threshold
        self.cuts = 0
        self.reset()

    def reset(self) -> None:
        """Forget the past (the next frame's estimate is used as it is)."""
        self._state = None
        self._held = None  # the last input, which frames that reused it held
        self._thumbnail: Tensor | None = None
        self._histogram: Tensor | None = None  # the luma histogram of ``_thumbnail``

    def _continuing(self, thumbnail: Tensor, *, fresh: bool) -> Tensor | None:
        """Record ``thumbnail``; the previous one when the running state goes on, None when it
        starts over (the first frame, ``fresh`` state, or a cut, which is counted)."""
        previous, self._thumbnail = self._thumbnail, thumbnail
        before, self._histogram = self._histogram, luma_histogram(thumbnail)  # each thumbnail's once
        if fresh or previous is None or before is None:
            return None
        if histogram_gap(before, self._histogram) > self.cut_threshold:
            self.cuts += 1
            return None
        return previous

    @staticmethod
    def _caught_up(state: Tensor, held: Tensor, frames: int, alpha: Tensor | float) -> Tensor:
        """``state`` after the ``frames`` − 1 frames that held the last input ``held``, each
        moving it towards that input by ``1 − alpha``."""
        if frames == 1:
            return state
        keep = alpha ** (frames - 1)
        return keep * state + (1 - keep) * held


class GammaSmoother(_SceneFollower):
    """Stateful EMA of γ maps: ``state = a·state + (1 − a)·γ``, reset when the scene cuts.

    ``alpha`` is the weight of the past (0 turns smoothing off by day), ``night_alpha`` its
    floor at full night (the module). With ``motion`` > 0 the weight drops per pixel as
    ``alpha · exp(−|Δ luma| / motion)`` where the thumbnail changed.
    """

    def __init__(
        self,
        alpha: float,
        *,
        night_alpha: float = NIGHT_SMOOTH,
        cut_threshold: float = SCENE_CUT,
        motion: float = 0.05,
    ) -> None:
        if motion < 0:
            raise ValueError(f"motion scale must be >= 0, got {motion}")
        if not 0.0 <= night_alpha < 1.0:
            raise ValueError(f"night smoothing alpha must be in [0, 1), got {night_alpha}")
        self.motion, self.night_alpha = motion, night_alpha
        super().__init__(alpha, "smoothing", cut_threshold)

    def __call__(self, gamma: Tensor, thumbnail: Tensor, *, frames: int = 1, night: Tensor | None = None) -> Tensor:
        """Smooth ``gamma`` (N×3×h×w) given the low-res input it was estimated from (N×3×h×w)
        and each frame's nightness ``night`` (shape N; None: daylight).
        ``frames`` > 1: the frames between the last call and this one held the last γ (a stage
        that reuses an estimate), and the state moved towards it on each."""
        alpha = _at_night(self.alpha, self.night_alpha, night)
        if _nothing(alpha):  # no past counts (daylight, smoothing off): the next frame starts afresh
            self.reset()
            return gamma
        previous = self._continuing(thumbnail, fresh=self._state is None or self._state.shape != gamma.shape)
        if previous is None:
            self._state = self._held = gamma
            return gamma
        if isinstance(alpha, Tensor):
            alpha = alpha.to(gamma.dtype).view(-1, 1, 1, 1)
        state = self._caught_up(self._state, self._held, frames, alpha)
        weight = alpha
        if self.motion > 0:
            change = (luma(thumbnail) - luma(previous)).abs()
            weight = alpha * torch.exp(-change / self.motion)
        self._state = weight * state + (1 - weight) * gamma
        self._held = gamma
        return self._state


class ExposureTracker(_SceneFollower):
    """The exposure decision smoothed over time: an exponential moving average of the gate's
    per-frame enhancement weight, exposure and headroom (:class:`~sagc.models.gate.ExposureGate`;
    the headroom decides how much of the exposure is a gain, so a headlight that takes it away
    is followed as slowly as the exposure), of the black point (:mod:`sagc.ops.black`) and of
    the log₂ of the exposure target, reset when the scene cuts. The target is metered from
    light-invariant statistics of the thumbnail (:meth:`~sagc.models.gate.ExposureGate.target`):
    it says what the scene is, so a fade leaves it nearly where it is while the noise in a night
    thumbnail's darkest levels moves it from frame to frame.

    ``alpha`` is the weight of the past per frame: 0.9 follows a lasting change within about ten
    frames (a third of a second at 30 frames/s; a tunnel exit is usually also a cut and is
    followed at once), while a passing headlight or a flash moves the decision by a tenth of its
    own swing per frame instead of at once. The exposure and the headroom (the second and fourth
    values, in stops) move by at most ``max_step`` stops per frame besides: a headlight that
    takes the white from a night street (several stops of swing) darkens the rest of it by 7 %
    a frame at most (0.1 stops), and a lasting change of 4 stops is followed within 40 frames.
    ``target_alpha`` is the weight of the past of the fifth value, the log₂ target: 0.7, chosen
    on CamVid train pans (``tools/choose_temporal.py``: the largest weight whose pans lose at
    most 0.1 dB against an unsmoothed target; 0.9 loses 0.5 dB on 4-pixel pans, where the
    content changes the target as it moves).
    """

    _IN_STOPS = (1, 3)  # the values the step limit applies to
    _TARGET = 4  # the value ``target_alpha`` applies to

    def __init__(
        self,
        alpha: float = 0.9,
        *,
        cut_threshold: float = SCENE_CUT,
        max_step: float = 0.1,
        target_alpha: float = 0.7,
    ) -> None:
        if not max_step > 0.0:
            raise ValueError(f"exposure max_step must be > 0 stops, got {max_step}")
        if not 0.0 <= target_alpha < 1.0:
            raise ValueError(f"exposure target_alpha must be in [0, 1), got {target_alpha}")
        self.max_step, self.target_alpha = max_step, target_alpha
        super().__init__(alpha, "exposure", cut_threshold)

    def _alphas(self, count: int) -> list[float]:
        """The weight of the past of each of ``count`` values."""
        return [self.target_alpha if index == self._TARGET else self.alpha for index in range(count)]

    def _limit(self, values: list[Tensor], start: Sequence[Tensor], step: float) -> None:
        """Keep the values in stops within ``step`` of ``start``, in place."""
        for index in self._IN_STOPS:
            if index < len(values):
                values[index] = start[index] + (values[index] - start[index]).clamp(-step, step)

    def __call__(
        self, *decision: Tensor | None, frames: int = 1, solve: Callable[..., Tensor] | None = None
    ) -> tuple[Tensor, ...]:
        """The smoothed per-image decision (``weight, stops, black, room, thumbnail``: the
        enhancement weight, the exposure, the black point and the headroom in stops, each of
        shape N, then
        the low-res frame ``thumbnail`` they were made for; any number of such shape-N values
        before it). ``frames`` > 1: the frames between the last call and this one held the last
        decision (a stage that reuses an estimate), and the state moved towards it on each, so
        the decision follows a change in the same time either way.

        ``solve(black, room, *rest)``: the exposure for a black point, a headroom and the values
        after them (e.g. the gate's :meth:`~sagc.models.gate.ExposureGate.lift` for the log₂ of
        its target); ``stops`` may then be None. Those values are smoothed first and the frame's
        exposure is solved for the smoothed ones, the levels it is given, before it is smoothed
        in turn: solved for the frame's own levels and smoothed apart from them, the exposure
        drifts out of step with them while they move (a night road whose black point rises over
        a second brightened frame after frame)."""
        *values, thumbnail = decision
        decision = list(values)
        state = self._state
        fresh = state is None or len(state) != len(decision) or state[0].shape != decision[0].shape
        if self._continuing(thumbnail, fresh=fresh) is None:
            if solve is not None:
                decision[1] = solve(*decision[2:])
            self._state = self._held = tuple(decision)
            return self._state
        a = self.alpha
        alphas = self._alphas(len(state))
        caught = [self._caught_up(s, h, frames, w) for s, h, w in zip(state, self._held, alphas, strict=True)]
        self._limit(caught, state, self.max_step * (frames - 1))  # the frames that held the last decision
        if solve is not None:
            decision[1] = caught[1]  # until the levels it is solved for are known
        moved = [w * past + (1 - w) * now for past, now, w in zip(caught, decision, alphas, strict=True)]
        self._limit(moved, caught, self.max_step)
        if solve is not None:
            decision[1] = solve(*moved[2:])
            moved[1] = a * caught[1] + (1 - a) * decision[1]
            self._limit(moved, caught, self.max_step)
        self._state = tuple(moved)
        self._held = tuple(decision)
        return self._state

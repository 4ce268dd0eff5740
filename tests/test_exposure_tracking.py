"""The exposure decision over time: smoothed within a shot, reset at cuts, off for stills."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sagc.models import load_enhancer
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.enhance.smoothing import ExposureTracker
from sagc.stream.media.frame import Frame


def _thumb(level: float) -> torch.Tensor:
    return torch.full((1, 3, 8, 8), level)


def _zero() -> torch.Tensor:
    return torch.tensor([0.0])


def test_moving_average_of_weight_lift_and_black_point():
    tracker = ExposureTracker(0.75, max_step=10.0)
    weight, stops, black = tracker(torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([0.04]), _thumb(0.05))
    assert (float(weight), float(stops), float(black)) == (1.0, 2.0, pytest.approx(0.04))  # the first as it is
    weight, stops, black = tracker(_zero(), _zero(), _zero(), _thumb(0.05))
    assert float(weight) == pytest.approx(0.75) and float(stops) == pytest.approx(1.5)
    assert float(black) == pytest.approx(0.03)
    weight, stops, black = tracker(_zero(), _zero(), _zero(), _thumb(0.9))  # a cut
    assert (float(weight), float(stops), float(black), tracker.cuts) == (0.0, 0.0, 0.0, 1)
    tracker.reset()
    weight, _, _ = tracker(torch.tensor([0.5]), _zero(), _zero(), _thumb(0.9))
    assert float(weight) == 0.5
    with pytest.raises(ValueError, match="alpha"):
        ExposureTracker(1.0)
    with pytest.raises(ValueError, match="max_step"):
        ExposureTracker(0.9, max_step=0.0)
    with pytest.raises(ValueError, match="target_alpha"):
        ExposureTracker(0.9, target_alpha=1.0)


def test_the_exposure_and_the_headroom_move_a_limited_number_of_stops_per_frame():
    tracker = ExposureTracker(0.5, max_step=0.1)
    decision = [torch.tensor([1.0]), torch.tensor([4.0]), torch.tensor([0.02]), torch.tensor([4.5])]
    tracker(*decision, _thumb(0.05))
    weight, stops, black, room = tracker(_zero(), _zero(), _zero(), _zero(), _thumb(0.05))
    assert float(weight) == pytest.approx(0.5) and float(black) == pytest.approx(0.01)  # the average
    assert float(stops) == pytest.approx(3.9) and float(room) == pytest.approx(4.4)  # 0.1 stops a frame
    _, stops, _, _ = tracker(_zero(), _zero(), _zero(), _zero(), _thumb(0.05), frames=3)
    assert float(stops) == pytest.approx(3.6)  # three frames' worth


def test_frames_that_held_the_last_decision_count():
    """A stage that reuses an estimate for two frames says so: one call with ``frames=3`` moves
    the decision as two calls holding the last input and one with the new."""
    step_by_step, skipping = ExposureTracker(0.9, max_step=10.0), ExposureTracker(0.9, max_step=10.0)
    first = torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([0.05])
    held = torch.tensor([0.6]), torch.tensor([1.0]), torch.tensor([0.03])
    new = torch.tensor([0.2]), torch.tensor([0.5]), torch.tensor([0.01])
    for tracker in (step_by_step, skipping):
        tracker(*first, _thumb(0.05))
        tracker(*held, _thumb(0.05))
    for _ in range(2):
        step_by_step(*held, _thumb(0.05))
    expected = step_by_step(*new, _thumb(0.05))
    got = skipping(*new, _thumb(0.05), frames=3)
    assert torch.allclose(torch.stack(got), torch.stack(expected))


def test_the_exposure_is_solved_for_the_black_point_and_headroom_the_frame_is_given():
    """With ``solve``, the black point and the headroom are smoothed first and the exposure is
    solved for the smoothed ones, then smoothed in turn."""
    asked = []

    def solve(black: torch.Tensor, room: torch.Tensor) -> torch.Tensor:
        asked.append((float(black), float(room)))
        return 10.0 * black + room  # any exposure that depends on the levels

    tracker = ExposureTracker(0.5, max_step=10.0)
    weight, stops, black, room = tracker(
        torch.tensor([1.0]), None, torch.tensor([0.2]), torch.tensor([2.0]), _thumb(0.05), solve=solve
    )
    assert asked == [(pytest.approx(0.2), 2.0)] and float(stops) == pytest.approx(4.0)  # the first as it is
    weight, stops, black, room = tracker(
        torch.tensor([1.0]), None, torch.tensor([0.4]), torch.tensor([3.0]), _thumb(0.05), solve=solve
    )
    assert (float(black), float(room)) == (pytest.approx(0.3), pytest.approx(2.5))
    assert asked[-1] == (pytest.approx(0.3), pytest.approx(2.5))  # solved for the smoothed levels
    assert float(stops) == pytest.approx(0.5 * 4.0 + 0.5 * (10.0 * 0.3 + 2.5))  # 4.75, not the frame's own 7.0
    plain = ExposureTracker(0.5, max_step=10.0)  # solved for the frame's own levels, as without solve
    plain(torch.tensor([1.0]), torch.tensor([4.0]), torch.tensor([0.2]), torch.tensor([2.0]), _thumb(0.05))
    _, unsynced, _, _ = plain(
        torch.tensor([1.0]), torch.tensor([7.0]), torch.tensor([0.4]), torch.tensor([3.0]), _thumb(0.05)
    )
    assert float(unsynced) == pytest.approx(5.5) != float(stops)


def test_the_enhancer_solves_the_lift_for_the_levels_and_target_the_tracker_gives_the_frame():
    enhancer = load_enhancer("default")
    generator = torch.Generator().manual_seed(0)
    clip = [0.02 + 0.06 * torch.rand(1, 3, 45, 60, generator=generator) ** 2 for _ in range(2)]
    clip[1][..., :9, :] = 0.004  # a darker band: the black point and the white move
    tracker = ExposureTracker(0.5, max_step=10.0, target_alpha=0.25)
    calls = []

    def recording(*decision, frames=1, solve=None):
        assert decision[1] is None and solve is not None  # the exposure is left to the levels
        calls.append({"raw": decision, "solve": solve})
        out = tracker(*decision, frames=frames, solve=solve)
        calls[-1]["out"] = out
        return out

    with torch.no_grad():
        for x in clip:
            enhancer.gamma(x, exposure=recording)
        last = calls[-1]
        _, stops, black, room, target = last["out"]
        _, _, raw_black, raw_room, raw_target, _ = last["raw"]
        assert float(black) > 0 and not torch.allclose(black, raw_black)  # the tracker moved the black point
        # the log2 target is smoothed with the levels (at its own weight): a level of the scene
        assert torch.allclose(target, 0.25 * calls[0]["out"][4] + 0.75 * raw_target)
        assert not torch.allclose(target, raw_target)
        past = calls[0]["out"][1]
        solved = last["solve"](black, room, target)  # the lift for the levels the frame is given
        assert torch.allclose(stops, 0.5 * past + 0.5 * solved)
        own = last["solve"](raw_black, raw_room, raw_target)  # for the frame's own levels it would differ
        assert not torch.allclose(own, solved, atol=1e-3)
        assert not torch.allclose(last["solve"](black, room, raw_target), solved, atol=1e-3)


def _night(patch: bool = False) -> Frame:
    rng = np.random.default_rng(0)
    rgb = np.clip(10 + rng.normal(0, 2, (64, 96, 3)), 0, 255)
    if patch:  # a headlight: a fifth of the frame bright, not a cut
        rgb[:, :19] = 230
    return Frame(rgb.round().astype(np.uint8))


def _lift_change(stage: CpuStage) -> float:
    """How much the part of the frame the headlight does not cover changes when it appears."""
    before = stage(_night()).rgb[:, 19:].astype(float)
    during = stage(_night(patch=True)).rgb[:, 19:].astype(float)
    return float(np.abs(during - before).mean())


def test_a_passing_headlight_moves_the_video_exposure_a_little_and_a_still_at_once():
    video = CpuStage(load_enhancer("default"))
    assert video.exposure is not None  # the default weights' gate is on: video tracks it
    stills = CpuStage(load_enhancer("default"))
    stills.configure(stills.settings, temporal=False)
    assert stills.exposure is None and stills.smoother is None
    for stage in (video, stills):
        for _ in range(5):
            stage(_night())
    tracked, per_frame = _lift_change(video), _lift_change(stills)
    assert per_frame > 20.0  # on its own the headlight frame is exposed quite differently
    assert tracked < 0.2 * per_frame
    video.reset()  # a new clip: the first frame is decided on its own
    assert np.array_equal(video(_night(patch=True)).rgb, stills(_night(patch=True)).rgb)


def test_no_tracking_without_the_gate():
    stage = CpuStage(load_enhancer("default", gate=False))
    assert stage.exposure is None
    stage.configure(stage.settings.replace(gate=True))
    assert stage.exposure is not None

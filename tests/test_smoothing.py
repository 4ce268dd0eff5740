"""γ-map smoothing: the EMA by hand, resets at scene cuts, motion-aware weights, night."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from sagc.models import RuntimeSettings, load_enhancer
from sagc.ops.histogram import histogram_distance, histogram_gap, luma_histogram
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.enhance.reference import ReferenceStage
from sagc.stream.enhance.smoothing import NIGHT_SMOOTH, GammaSmoother
from sagc.stream.enhance.video_state import VideoState
from sagc.stream.media.frame import Frame


def _thumb(level: float) -> torch.Tensor:
    return torch.full((1, 3, 8, 8), level)


def test_ema_hand_computed():
    smoother = GammaSmoother(0.5, motion=0.0)
    a, b = torch.full((1, 3, 8, 8), 0.2), torch.full((1, 3, 8, 8), 0.6)
    assert torch.equal(smoother(a, _thumb(0.3)), a)
    torch.testing.assert_close(smoother(b, _thumb(0.3)), torch.full((1, 3, 8, 8), 0.4))
    torch.testing.assert_close(smoother(b, _thumb(0.3)), torch.full((1, 3, 8, 8), 0.5))


def test_resets_at_a_cut():
    smoother = GammaSmoother(0.9, motion=0.0)
    smoother(torch.full((1, 3, 8, 8), 0.2), _thumb(0.05))
    smoother(torch.full((1, 3, 8, 8), 0.2), _thumb(0.05))
    after_cut = torch.full((1, 3, 8, 8), 0.9)
    assert torch.equal(smoother(after_cut, _thumb(0.8)), after_cut)
    assert smoother.cuts == 1
    assert histogram_distance(_thumb(0.05), _thumb(0.8)) == pytest.approx(1.0)
    assert histogram_distance(_thumb(0.05), _thumb(0.05)) == 0
    half = torch.cat([_thumb(0.05)[..., :4], _thumb(0.8)[..., 4:]], dim=-1)  # half the pixels moved bins
    assert histogram_gap(luma_histogram(_thumb(0.05)), luma_histogram(half)) == pytest.approx(0.5)


def test_motion_aware_follows_changed_pixels():
    smoother = GammaSmoother(0.9, motion=0.02, cut_threshold=1.1)
    before = torch.full((1, 3, 8, 8), 0.2)
    smoother(before, _thumb(0.3))
    moved = _thumb(0.3)
    moved[..., :4] = 0.6  # left half changed a lot
    out = smoother(torch.full((1, 3, 8, 8), 0.8), moved)
    assert out[..., :4].min() > 0.79  # changed: follows the new estimate
    assert out[..., 4:].max() < 0.3  # static: keeps the past


def test_off_is_passthrough_and_bad_alpha():
    gamma = torch.rand(1, 3, 4, 4)
    assert GammaSmoother(0.0)(gamma, _thumb(0.2)) is gamma
    with pytest.raises(ValueError):
        GammaSmoother(1.0)


def test_night_raises_the_weight_of_the_past_and_daylight_keeps_the_setting():
    a, b = torch.full((2, 3, 8, 8), 0.2), torch.full((2, 3, 8, 8), 0.7)
    smoother = GammaSmoother(0.0, motion=0.0)  # smoothing off in the settings
    assert smoother.night_alpha == NIGHT_SMOOTH == 0.8
    smoother(a, _thumb(0.03).expand(2, -1, -1, -1), night=torch.tensor([1.0, 0.0]))
    out = smoother(b, _thumb(0.03).expand(2, -1, -1, -1), night=torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(out[0], torch.full((3, 8, 8), 0.8 * 0.2 + 0.2 * 0.7))  # full night
    torch.testing.assert_close(out[1], b[1])  # daylight: as the settings say
    half = GammaSmoother(0.5, motion=0.0)  # partly night: between the setting and the night's weight
    half(a[:1], _thumb(0.1), night=torch.tensor([0.5]))
    torch.testing.assert_close(
        half(b[:1], _thumb(0.1), night=torch.tensor([0.5])), torch.full((1, 3, 8, 8), 0.65 * 0.2 + 0.35 * 0.7)
    )
    stronger = GammaSmoother(0.9, motion=0.0)  # a setting above the night's weight is kept
    stronger(a[:1], _thumb(0.03), night=torch.ones(1))
    torch.testing.assert_close(
        stronger(b[:1], _thumb(0.03), night=torch.ones(1)), torch.full((1, 3, 8, 8), 0.9 * 0.2 + 0.1 * 0.7)
    )
    with pytest.raises(ValueError):
        GammaSmoother(0.0, night_alpha=1.0)


def test_video_with_the_gate_smooths_gamma_at_night_only():
    state = VideoState()
    settings = RuntimeSettings(gate=True)  # smoothing off
    state.follow(settings)
    assert state.smoother is not None and state.smoother.alpha == 0.0
    state.follow(settings.replace(gate=False))
    assert state.smoother is None  # no gate, no smoothing: nothing carried
    state.follow(settings, temporal=False)
    assert state.smoother is None  # unrelated stills
    state.follow(settings.replace(smooth=0.5))
    assert state.smoother is not None and state.smoother.alpha == 0.5


def _pan(level: float, frames: int = 12) -> list[Frame]:
    """A blurred random texture panned a pixel a frame at mean level about ``level`` (0 to 1),
    with fresh sensor noise on every frame."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.random((120, 240, 3)).astype(np.float32), (0, 0), 6)
    texture = (texture - texture.min()) / (texture.max() - texture.min()) * 2 * level
    clip = []
    for index in range(frames):
        picture = texture[:, index : index + 200] + rng.normal(0.0, 0.01, (120, 200, 3))
        clip.append(Frame(np.ascontiguousarray((picture.clip(0, 1) * 255).round().astype(np.uint8))))
    return clip


def _outputs(clip: list[Frame], stage_type: type, *, night_alpha: float) -> list[np.ndarray]:
    stage = stage_type(load_enhancer("default"))  # the default weights' gate is on
    stage.video_state.smoother.night_alpha = night_alpha
    return [stage(frame).rgb for frame in clip]


@pytest.mark.parametrize("stage_type", [CpuStage, ReferenceStage])
def test_the_stage_smooths_gamma_at_night_and_leaves_daylight_as_set(stage_type: type):
    night = _pan(0.04)
    smoothed, plain = (
        _outputs(night, stage_type, night_alpha=NIGHT_SMOOTH),
        _outputs(night, stage_type, night_alpha=0.0),
    )
    assert np.array_equal(smoothed[0], plain[0])  # the first frame has no past
    moved = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(smoothed[1:], plain[1:], strict=True)]
    assert max(moved) > 0.05, moved  # later night frames carry the past's γ
    day = _pan(0.45)
    for a, b in zip(
        _outputs(day, stage_type, night_alpha=NIGHT_SMOOTH), _outputs(day, stage_type, night_alpha=0.0), strict=True
    ):
        assert np.array_equal(a, b)

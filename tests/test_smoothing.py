"""γ-map smoothing: the EMA by hand, resets at scene cuts, motion-aware weights."""

from __future__ import annotations

import pytest
import torch

from sagc.ops.histogram import histogram_distance, histogram_gap, luma_histogram
from sagc.stream.enhance.smoothing import GammaSmoother


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

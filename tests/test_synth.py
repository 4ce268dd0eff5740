"""ISSR darkening: seeded, deterministic, darker than its input, and shape/dtype preserving."""

from __future__ import annotations

import pytest
import torch

from sagc.core.synth import darken, sample_darken_params


def _image() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(2, 3, 32, 48) * 0.8 + 0.2


def test_same_seed_same_result():
    a = darken(_image(), sample_darken_params(g := torch.Generator().manual_seed(5)), generator=g)
    b = darken(_image(), sample_darken_params(h := torch.Generator().manual_seed(5)), generator=h)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_different_seed_differs():
    p1 = sample_darken_params(torch.Generator().manual_seed(1))
    p2 = sample_darken_params(torch.Generator().manual_seed(2))
    assert p1 != p2


def test_darker_than_input_and_quantised():
    image = _image()
    for seed in range(10):
        g = torch.Generator().manual_seed(seed)
        dark = darken(image, sample_darken_params(g), generator=g)
        assert dark.shape == image.shape and dark.dtype == image.dtype
        assert dark.mean() < image.mean()
        torch.testing.assert_close(dark * 255, (dark * 255).round(), atol=1e-4, rtol=0)
        assert dark.min() >= 0 and dark.max() <= 1


def test_parameter_ranges():
    for seed in range(50):
        p = sample_darken_params(torch.Generator().manual_seed(seed))
        assert 1.1 <= p.gamma < 1.3
        assert 0.4 <= p.light < 1.1
        assert 0.5 <= p.exposure < 1.0
        assert p.sigma_signal >= 0 and p.sigma_constant >= 0


def test_light_range_draws_the_light_scale_and_nothing_else():
    from sagc.core.synth import DAY_LIGHT, NIGHT_LIGHT, parse_light

    day = sample_darken_params(torch.Generator().manual_seed(3))
    assert day == sample_darken_params(torch.Generator().manual_seed(3), light=DAY_LIGHT)
    nights = [sample_darken_params(torch.Generator().manual_seed(s), light=NIGHT_LIGHT) for s in range(50)]
    assert all(NIGHT_LIGHT[0] <= p.light <= NIGHT_LIGHT[1] for p in nights)
    night = sample_darken_params(torch.Generator().manual_seed(3), light=NIGHT_LIGHT)
    assert night.gamma == day.gamma and night.exposure == day.exposure and night.gains == day.gains
    assert night.sigma_signal > day.sigma_signal  # σ_s = 0.016 U / L grows as L falls
    assert parse_light("night") == NIGHT_LIGHT and parse_light("dusk") == DAY_LIGHT
    assert parse_light("0.1:0.2") == (0.1, 0.2)
    for bad in ("dark", "0.3", "0:0.2", "0.3:0.1", "nan:1"):
        with pytest.raises(ValueError, match="--light"):
            parse_light(bad)

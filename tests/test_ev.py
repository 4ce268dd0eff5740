"""Exposure compensation (``--ev``): brighter or darker than automatic, never darker than the
input, and nothing at 0 (a frame the gate leaves alone stays so)."""

from __future__ import annotations

import numpy as np
import torch

from sagc.models import Enhancer, GammaEstimator
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.media.frame import Frame

from .conftest import scene


def _enhancer(**settings) -> Enhancer:
    torch.manual_seed(0)
    return Enhancer(GammaEstimator(), scale=2.0, **settings).eval()


def test_ev_brightens_and_darkens_by_stops_and_never_below_the_input():
    x = torch.rand(1, 3, 32, 48) * 0.3
    with torch.no_grad():
        auto = _enhancer()(x)
        up = _enhancer(ev=1.0)(x)
        down = _enhancer(ev=-1.0)(x)
        floor = _enhancer(ev=-3.0)(x)
    assert (up >= auto - 1e-6).all() and up.mean() > auto.mean()
    assert (down <= auto + 1e-6).all() and down.mean() < auto.mean()
    assert (floor >= x - 1e-6).all()  # γ is capped at 1: compensation never darkens the input
    with torch.no_grad():  # one stop up halves the exponent: log(output) halves where γ·2^-ev < 1
        gamma = _enhancer().gamma(torch.nn.functional.avg_pool2d(x, 2))[0]
        gamma_up = _enhancer(ev=1.0).gamma(torch.nn.functional.avg_pool2d(x, 2))[0]
    torch.testing.assert_close(gamma_up, gamma / 2)


def test_ev_zero_leaves_a_well_exposed_frame_alone_on_the_8bit_path():
    bright = np.clip(scene(0, 96, 64).astype(np.float32) * 0.8 + 50, 0, 255).astype(np.uint8)
    bright[:16, :16] = 255
    stage = CpuStage(_enhancer(gate=True, ev=0.0))
    assert np.array_equal(stage(Frame(bright)).rgb, bright)
    stage.configure(stage.settings.replace(ev=1.0))
    assert stage(Frame(bright)).rgb.mean() > bright.mean()  # asked for, it brightens anyway

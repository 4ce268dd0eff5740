"""The exposure gate: well-exposed frames are left alone, dark ones enhanced as before."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sagc.core.errors import SagcError
from sagc.eval.metrics import luma
from sagc.models import Enhancer, ExposureGate, GammaEstimator, load_checkpoint, load_enhancer, save_enhancer
from sagc.models.gate import TARGET_FEATURES, TARGET_QUANTILES, exposure_features, target_features
from sagc.ops.black import Levels
from sagc.ops.exposure import exposure_levels, headroom, host_eager
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.enhance.reference import ReferenceStage
from sagc.stream.media.frame import Frame


def _grey(level: float, highlight_fraction: float = 0.0, size: tuple[int, int] = (20, 50)) -> torch.Tensor:
    """A grey image at ``level`` whose first ``highlight_fraction`` of pixels are white."""
    x = torch.full((1, 3, *size), level)
    count = round(highlight_fraction * size[0] * size[1])
    x.view(1, 3, -1)[..., :count] = 1.0
    return x


def _logit(gate: ExposureGate, level: float) -> float:
    """The gate's logit for a flat grey image: all three features are log2(level)."""
    return sum(gate.coefficients) * math.log2(level) + gate.bias


def test_features_are_the_log_mean_median_and_95th_percentile():
    x = torch.rand(2, 3, 9, 13, generator=torch.Generator().manual_seed(0))
    values = luma(x).flatten(1)
    want = torch.stack([values.mean(1), *torch.quantile(values, torch.tensor([0.5, 0.95]), dim=1)], 1)
    torch.testing.assert_close(exposure_features(x), torch.log2(want))


def test_hand_computed_weights():
    gate = ExposureGate()
    for level in (0.5, 0.05):
        p = 1.0 / (1.0 + math.exp(-_logit(gate, level)))
        assert float(gate.probability(_grey(level))) == pytest.approx(p, rel=1e-4)
    assert float(gate(_grey(0.5))) == 0.0  # a normal level: left alone
    assert float(gate(_grey(0.05))) == 1.0  # night level: enhanced fully
    # the level whose probability is 0.65, half-way up the ramp 0.5 → 0.8
    level = 2.0 ** ((math.log(0.65 / 0.35) - gate.bias) / sum(gate.coefficients))
    assert float(gate(_grey(level))) == pytest.approx(0.5, abs=1e-3)
    batch = torch.cat([_grey(0.05), _grey(0.5)])
    torch.testing.assert_close(gate(batch), torch.tensor([1.0, 0.0]))  # one weight per image


def test_flat_daylight_without_highlights_is_left_alone():
    """Overcast daylight: mean luma 0.35, nothing near white, little contrast."""
    rng = torch.Generator().manual_seed(1)
    flat = (0.35 + 0.08 * torch.randn(1, 3, 45, 80, generator=rng)).clamp(0, 1)
    assert float(luma(flat).flatten().quantile(0.99)) < 0.6
    assert float(ExposureGate()(flat)) == 0.0


def _scene(size: tuple[int, int] = (12, 16)) -> torch.Tensor:
    """A street-like frame: a sky near white over darker ground, mean luma about 0.4."""
    rng = torch.Generator().manual_seed(3)
    x = 0.15 + 0.3 * torch.rand(1, 3, *size, generator=rng)
    x[..., : size[0] // 4, :] = 0.95
    return x


def test_the_target_features_and_the_target_do_not_depend_on_the_light():
    gate = ExposureGate()
    scene = _scene()
    features = [target_features(scene * level) for level in (1.0, 0.3, 0.05)]
    assert features[0].shape == (1, len(TARGET_FEATURES))
    for other in features[1:]:
        torch.testing.assert_close(other, features[0], atol=1e-5, rtol=0)
    # each a statistic of the luma over the white, the 99th percentile of the largest channel
    values = luma(scene).flatten()
    stats = [values.mean(), *(values.quantile(q) for q in TARGET_QUANTILES)]
    want = torch.log2(torch.stack(stats) / headroom(scene)[0])
    torch.testing.assert_close(features[0][0], want, atol=1e-5, rtol=0)
    *weights, offset = gate.exposure
    level = 2.0 ** (sum(w * float(f) for w, f in zip(weights, want, strict=True)) + offset)
    level = min(max(level, gate.limits[0]), gate.limits[1])
    for value in (1.0, 0.3, 0.05):
        assert float(gate.target(scene * value)) == pytest.approx(level, rel=1e-4)
    # a blue sky is white in its blue channel: the white is the largest channel's, not luma's
    blue = scene.clone()
    blue[:, :2, :3, :] = 0.3
    assert float(headroom(blue)) == pytest.approx(0.95, abs=1e-6)
    assert float(ExposureGate(limits=(0.2, 0.25)).target(scene)) == 0.25  # within the limits
    # a scene whose light sits nearer its white is exposed brighter
    flat = 0.5 + 0.5 * (scene - 0.5)
    assert float(gate.target(flat)) > float(gate.target(scene))


def test_exposure_levels_are_a_gain_up_to_the_white_and_a_power_beyond():
    x = _scene() * 0.25  # white at 0.2375: 2.07 stops of headroom
    room = math.log2(1 / 0.2375)
    gamma = torch.full((1, 3, 12, 16), 0.8)
    for stops in (0.0, 1.0, 2.0):
        scaled, gain = exposure_levels(gamma, x, torch.tensor([stops]))
        torch.testing.assert_close(scaled, gamma)
        assert float(gain) == pytest.approx(2.0**stops, rel=1e-5)
    scaled, gain = exposure_levels(gamma, x, torch.tensor([room + 1.0]))
    assert float(gain) == pytest.approx(1 / 0.2375, rel=1e-4)  # the white at 1, no channel clipped
    torch.testing.assert_close(scaled, gamma / 2)
    scaled, gain = exposure_levels(gamma, x, torch.tensor([-1.0]))
    assert float(gain) == 1.0 and bool((scaled == 1.0).all())  # below 0: towards γ = 1, never past it


def test_lift_exposes_a_frame_to_its_target_whatever_the_light():
    gate = ExposureGate()
    gamma = torch.full((1, 3, 12, 16), 0.8)
    outputs = []
    for level in (0.3, 0.1, 0.05):  # the white stays above MIN_WHITE: gains up to 32
        x = _scene() * level
        black = torch.tensor([0.1 * level])  # a point that scales with the light, as a measured one
        stops = gate.lift(x, gamma, black=black)
        scaled, gain = exposure_levels(gamma, x, stops)
        y = Levels(black * gain, gain)(x) ** scaled
        assert float(luma(y).mean()) == pytest.approx(float(gate.target(x)), abs=2e-3)
        outputs.append(y)
    torch.testing.assert_close(outputs[0], outputs[2], atol=0.02, rtol=0)  # the same picture from each
    bright = _scene() * 0.98  # the network alone would overshoot a low target: γ goes back to 1
    low = ExposureGate(limits=(0.1, 0.1))
    stops = low.lift(bright, torch.full_like(gamma, 0.3))
    scaled, gain = exposure_levels(torch.full_like(gamma, 0.3), bright, stops)
    assert float(gain) == 1.0 and bool((scaled == 1.0).all())
    assert float(ExposureGate(exposure=None).lift(_scene() * 0.03, gamma)) == 0.0


def test_lift_on_the_host_agrees_with_the_tensor_search():
    """On the CPU the search runs in NumPy; with gradients (as in export and on the GPU) in tensor
    ops: a batch of frames of every kind — dark, bright, with and without a black point, at the
    size where the lift meters every 2nd row and column — gets the same stops from both."""
    gate = ExposureGate()
    rng = torch.Generator().manual_seed(5)
    x = torch.cat([_scene((90, 160)) * level for level in (0.9, 0.3, 0.06, 0.01)])
    gamma = 0.3 + 0.7 * torch.rand(4, 3, 90, 160, generator=rng)
    for black in (None, torch.tensor([0.0, 0.01, 0.03, 0.05])):
        host = gate.lift(x, gamma, black=black)
        tracked = gamma.clone().requires_grad_(True)
        assert host_eager(gamma) and not host_eager(tracked)  # so the second search runs in tensor ops
        tensors = gate.lift(x, tracked, black=black)
        torch.testing.assert_close(host, tensors, atol=12 / 2**11, rtol=0)  # at most one step apart
        assert len(set(host.tolist())) == 4  # four different exposures


def test_rejects_bad_settings():
    with pytest.raises(ValueError, match="odds must rise"):
        ExposureGate(odds=(0.8, 0.5))
    with pytest.raises(ValueError, match="night"):
        ExposureGate(night=(0.2, 0.1))
    with pytest.raises(ValueError, match="exposure"):
        ExposureGate(exposure=(0.8, 0.1))  # one coefficient per target feature and an offset
    with pytest.raises(ValueError, match="exposure"):
        ExposureGate(exposure=(float("nan"),) * (len(TARGET_FEATURES) + 1))
    with pytest.raises(ValueError, match="limits"):
        ExposureGate(limits=(0.5, 0.2))


def test_well_exposed_images_come_back_unchanged_and_dark_ones_exposed_to_their_target(weights):
    estimator = load_enhancer(weights).estimator
    gated = Enhancer(estimator, scale=2.0, denoise=4.0, gate=True).eval()
    plain = Enhancer(estimator, scale=2.0, denoise=4.0).eval()
    rng = torch.Generator().manual_seed(0)
    bright = (_grey(0.45, 0.0, (24, 40)) + 0.02 * torch.randn(1, 3, 24, 40, generator=rng)).clamp(0, 1)
    dark = (0.06 + 0.01 * torch.randn(1, 3, 24, 40, generator=rng)).clamp(0, 1)
    dark[..., :4, :] = 0.2  # a sky: the white
    with torch.no_grad():
        assert torch.equal(torch.round(gated(bright) * 255), torch.round(bright * 255))  # γ = 1, no filter
        assert not torch.equal(torch.round(plain(bright) * 255), torch.round(bright * 255))
        target = float(gated.exposure_gate.target(gated.downscale(dark)))
        assert float(luma(gated(dark)).mean()) == pytest.approx(target, abs=0.02)
        assert abs(float(luma(plain(dark)).mean()) - target) > 0.05  # the network alone lands elsewhere
        both = gated(torch.cat([bright, dark]))  # batched: each image gets its own weight
    torch.testing.assert_close(both, torch.cat([gated(bright), gated(dark)]))


def test_fast_path_gates_like_the_float_path(weights):
    gate = ExposureGate()
    level = 2.0 ** ((math.log(0.65 / 0.35) - gate.bias) / sum(gate.coefficients))  # half-way up the ramp
    half = ((_grey(level, 0.0, (48, 64)) * 255).round().to(torch.uint8))[0].permute(1, 2, 0)
    frame = Frame(np.ascontiguousarray(half.numpy()))
    outputs = {}
    for gate in (True, False):
        for fast in (True, False):
            stage = (CpuStage if fast else ReferenceStage)(load_enhancer(weights, gate=gate, denoise=4))
            outputs[gate, fast] = stage(frame).rgb.astype(int)
    assert np.abs(outputs[True, True] - outputs[True, False]).max() <= 1
    night = Frame(np.full((48, 64, 3), 8, np.uint8))  # lifted to the gate's target on both paths
    lifted = [
        (CpuStage if fast else ReferenceStage)(load_enhancer(weights, gate=True))(night).rgb.astype(int)
        for fast in (True, False)
    ]
    assert np.abs(lifted[0] - lifted[1]).max() <= 1
    assert lifted[0].mean() > 8 * 4
    gated_lift = (outputs[True, False] - frame.rgb).mean()
    full_lift = (outputs[False, False] - frame.rgb).mean()
    assert 0.0 < gated_lift < full_lift  # a weight of about 0.5 (the ramp's middle) lifts less


def test_fast_path_does_no_full_resolution_work_on_a_frame_the_gate_leaves_alone(weights):
    from sagc.core.timing import StepTimer

    stage = CpuStage(load_enhancer(weights, gate=True, denoise=4, guide=0.5, temporal_denoise=0.6))
    stage.timer = StepTimer()
    day = (_grey(0.45, 0.0, (48, 64)) * 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    day = np.ascontiguousarray(day + np.random.default_rng(0).integers(0, 3, day.shape, dtype=np.uint8))
    assert np.array_equal(stage(Frame(day)).rgb, day)
    assert set(stage.timer.summary()) == {"downscale", "estimate"}
    night = Frame(np.full((48, 64, 3), 8, np.uint8))
    stage(night)  # a dark frame does the full work
    assert {"upsample", "apply"} <= set(stage.timer.summary())


def test_checkpoints_carry_the_switch(tmp_path):
    path = save_enhancer(tmp_path / "w.pt", GammaEstimator(), gate=True)
    assert load_checkpoint(path)["runtime"]["gate"] is True
    assert load_enhancer(path).gate == ExposureGate()
    assert load_enhancer(path, gate=False).gate is None
    older = load_checkpoint(path)
    del older["runtime"]["gate"]  # checkpoints from before the gate load with it off
    torch.save(older, tmp_path / "old.pt")
    assert load_enhancer(tmp_path / "old.pt").gate is None


def test_shipped_default_has_the_gate_on():
    assert load_enhancer("default").gate == ExposureGate()


def test_shipped_night_weights_expose_deep_night_as_the_default_does_and_leave_daylight_alone():
    night, default = load_enhancer("night"), load_enhancer("default")
    assert night.settings == default.settings  # one recipe, one set of run-time settings
    assert load_checkpoint("night")["provenance"]["config"]["night_fraction"] == 0.3
    rng = torch.Generator().manual_seed(0)
    y, x = torch.meshgrid(torch.linspace(0, 1, 96), torch.linspace(0, 1, 128), indexing="ij")
    scene = (0.5 + 0.4 * torch.sin(7 * x) * torch.cos(5 * y)).expand(1, 3, 96, 128)
    dark = (0.04 * scene + 0.003 * torch.randn(1, 3, 96, 128, generator=rng)).clamp(0, 1)
    target = float(default.exposure_gate.target(default.downscale(dark)))
    with torch.no_grad():
        means = [float(luma(enhancer(dark)).mean()) for enhancer in (night, default)]
    for mean in means:  # the exposure is the gate's, whichever curve shapes it (metered on the thumbnail)
        assert mean == pytest.approx(target, abs=0.06)
    day = _grey(0.45, 0.0, (48, 64))
    with torch.no_grad():
        assert torch.equal(torch.round(night(day) * 255), torch.round(day * 255))  # γ = 1


def test_eval_spec_switches_the_gate(weights):
    from sagc.eval.methods import parse_method

    assert parse_method(f"sagc:{weights}:gate=on").enhancer.gate == ExposureGate()
    assert parse_method(f"sagc:{weights}:gate=off").enhancer.gate is None
    with pytest.raises(SagcError, match="gate must be on or off"):
        parse_method(f"sagc:{weights}:gate=maybe")

"""The exposure decision's noise evidence: a frame's noise over its mean luma, its log-odds, how
it joins the gate's and the cue's, its fit, and the stage that measures it."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sagc.models import load_enhancer
from sagc.models.cue import ContentCue
from sagc.models.gate import ExposureGate
from sagc.ops.denoise import noise_level
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.enhance.reference import ReferenceStage
from sagc.stream.media.frame import Frame, YuvPlanes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from fit_exposure_gate import fit_noise, gate_logits, noise_ratios  # noqa: E402


def _grey(level: float, size: tuple[int, int] = (45, 60)) -> torch.Tensor:
    return torch.full((1, 3, *size), level)


def _neutral_cue() -> ContentCue:
    """A cue that gives 0.5 for every frame: no evidence of its own."""
    cue = ContentCue()
    with torch.no_grad():
        cue.head.weight.zero_()
        cue.head.bias.zero_()
    return cue.eval().requires_grad_(False)


def test_the_evidence_is_a_line_in_the_log_of_noise_over_mean_luma():
    gate = dataclasses.replace(ExposureGate(), noise=(2.0, 1.0))
    evidence = gate.noise_evidence(_grey(0.2), torch.tensor([0.02]))
    assert float(evidence) == pytest.approx(2.0 * math.log(0.1) + 1.0, rel=1e-5)
    darker = gate.noise_evidence(_grey(0.1), torch.tensor([0.02]))  # the same noise on less signal
    assert float(darker) == pytest.approx(float(evidence) + 2.0 * math.log(2.0), rel=1e-5)
    assert gate.noise_evidence(_grey(0.2), None) is None
    assert dataclasses.replace(gate, noise=None).noise_evidence(_grey(0.2), torch.tensor([0.02])) is None
    assert ExposureGate().noise is not None and ExposureGate().noise[0] > 0  # packaged: noisier reads darker
    with pytest.raises(ValueError):
        ExposureGate(noise=(float("nan"), 0.0))


def test_the_evidence_joins_the_gate_and_the_cue_where_the_gate_hesitates():
    enhancer = load_enhancer("default")
    enhancer.content_cue = _neutral_cue()
    gate = enhancer.exposure_gate
    dim, bright = _grey(94 / 255), _grey(160 / 255)
    p = float(gate.probability(dim))
    assert 0.02 <= p < gate.odds[0] and float(gate(dim)) == 0.0
    for e in (1.0, 2.5, 4.0):  # the log-odds add
        odds = p / (1 - p) * math.exp(e)
        expected = min(1.0, max(0.0, (odds / (1 + odds) - gate.odds[0]) / (gate.odds[1] - gate.odds[0])))
        assert float(enhancer.gate_weight(dim, evidence=torch.tensor([e]))) == pytest.approx(expected, abs=1e-5)
    assert float(enhancer.gate_weight(dim, evidence=torch.tensor([-8.0]))) == 0.0  # never lowers the gate's
    assert float(enhancer.gate_weight(_grey(40 / 255), evidence=torch.tensor([-8.0]))) == 1.0
    assert float(enhancer.gate_weight(bright, evidence=torch.tensor([8.0]))) == 0.0  # below the floor: the gate


def _noisy(sigma: float) -> np.ndarray:
    """A flat grey frame at level 94 with Gaussian noise of ``sigma`` levels (mean kept)."""
    rng = np.random.default_rng(0)
    return np.clip(94 + rng.normal(0, sigma, (180, 240, 3)), 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("form", ["rgb", "planes", "float"])
def test_the_stage_lifts_a_noisy_frame_and_passes_a_clean_one_at_the_same_level(form):
    outputs = {}
    for name, sigma in (("quiet", 1.0), ("noisy", 12.0)):
        enhancer = load_enhancer("default")
        enhancer.content_cue = _neutral_cue()  # the noise decides, not the cue
        stage = ReferenceStage(enhancer) if form == "float" else CpuStage(enhancer)
        stage.configure(stage.settings, temporal=False)
        rgb = _noisy(sigma)
        if form != "planes":
            outputs[name] = (rgb, stage(Frame(rgb.copy())).rgb)
        else:
            planes = YuvPlanes.from_rgb(rgb, matrix="itu601", color_range=1)
            out = stage(Frame(planes=planes)).planes
            outputs[name] = (planes.split()[0], out.split()[0])
    quiet_in, quiet_out = outputs["quiet"]
    noisy_in, noisy_out = outputs["noisy"]
    assert np.abs(quiet_out.astype(int) - quiet_in.astype(int)).max() <= 1  # the gate leaves it alone
    assert noisy_out.astype(float).mean() > noisy_in.astype(float).mean() + 10  # lifted


def _blocky_frames(count: int = 12) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    clean = []
    for _ in range(count):
        x = torch.rand(3, 12, 16, generator=generator).repeat_interleave(16, 1).repeat_interleave(16, 2)
        clean.append((0.15 + 0.7 * x).clamp(0, 1))
    return clean


def test_the_fit_reads_noisier_frames_as_darker():
    clean = _blocky_frames()
    slope, offset = fit_noise(clean)
    assert slope > 0 and math.isfinite(offset)
    even = math.exp(-offset / slope)  # the ratio at even odds
    assert 0.001 < even < 0.5


def test_the_fit_given_the_gate_is_the_line_that_best_adds_to_the_gates_log_odds():
    from sagc.core.synth import DAY_LIGHT, NIGHT_LIGHT, darken_sequence

    clean = _blocky_frames()
    gate = ExposureGate()
    alone = fit_noise(clean)
    given = fit_noise(clean, gate=gate)
    assert given != pytest.approx(alone, abs=1e-3)
    dark = [*darken_sequence(clean, seed=1, light=DAY_LIGHT), *darken_sequence(clean, seed=1, light=NIGHT_LIGHT)]
    frames = clean + dark
    labels = torch.tensor([0.0] * len(clean) + [1.0] * len(dark), dtype=torch.float64)
    base, ratio = gate_logits(frames, gate), noise_ratios(frames)

    def loss(line: tuple[float, float]) -> float:
        logits = base + line[0] * ratio + line[1]
        return float(torch.nn.functional.binary_cross_entropy_with_logits(logits, labels))

    assert loss(given) < loss(alone)  # the decision adds the line to the gate's log-odds
    assert loss(given) < float(torch.nn.functional.binary_cross_entropy_with_logits(base, labels))


def test_the_cpu_stage_measures_noise_in_the_units_of_the_float_path_with_a_gain():
    rgb = np.clip(60 + np.random.default_rng(1).normal(0, 6, (120, 160, 3)), 0, 255).round().astype(np.uint8)
    enhancer = load_enhancer("default", gain=2.0)
    stage = CpuStage(enhancer)
    assert stage.rgb is not None
    fast = stage._relative(stage.rgb, stage.rgb.noise(rgb))
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    slow = float(noise_level(enhancer.prepare(x)))  # what Enhancer.forward measures
    assert fast == pytest.approx(slow, rel=0.05)

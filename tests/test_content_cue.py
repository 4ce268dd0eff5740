"""The exposure decision's content cue: packaged and on, how its evidence joins the gate's, its
training and its checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sagc.models import load_enhancer
from sagc.models.checkpoint import load_checkpoint, packaged_cue
from sagc.models.cue import CUE_FLOOR, CUE_KIND, ContentCue
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.media.frame import Frame
from sagc.train.cue import train_content_cue

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from fit_exposure_gate import save_cue  # noqa: E402


def _decided(probability: float) -> ContentCue:
    """A cue that gives ``probability`` for every frame (its head's bias set, weights zero)."""
    cue = ContentCue()
    with torch.no_grad():
        cue.head.weight.zero_()
        cue.head.bias.fill_(float(torch.logit(torch.tensor(probability))))
    return cue.eval().requires_grad_(False)


def _grey(level: int) -> torch.Tensor:
    return torch.full((1, 3, 45, 60), level / 255.0)


def test_the_packaged_cue_is_part_of_the_default_decision():
    enhancer = load_enhancer("default")
    assert isinstance(enhancer.content_cue, ContentCue)
    assert sum(p.numel() for p in enhancer.content_cue.parameters()) == 14_401
    p = packaged_cue().probability(torch.rand(2, 3, 45, 60))
    assert p.shape == (2,) and bool(((p >= 0) & (p <= 1)).all())


def test_the_cue_adds_its_evidence_to_the_gate_where_the_gate_hesitates():
    enhancer = load_enhancer("default")
    gate = enhancer.exposure_gate
    dim, bright = _grey(94), _grey(160)  # gate probabilities about 0.1 and below the floor
    p_dim = float(gate.probability(dim))
    assert CUE_FLOOR <= p_dim < gate.odds[0]
    assert float(gate.probability(bright)) < CUE_FLOOR
    enhancer.content_cue = _decided(0.99)
    assert float(enhancer.gate_weight(bright)) == 0.0  # below the floor the gate alone decides
    for cue_p in (0.6, 0.9, 0.97, 0.99, 0.999):  # the log-odds add: p = σ(logit p_gate + logit p_cue)
        enhancer.content_cue = _decided(cue_p)
        odds = p_dim / (1 - p_dim) * cue_p / (1 - cue_p)
        expected = min(1.0, max(0.0, (odds / (1 + odds) - gate.odds[0]) / (gate.odds[1] - gate.odds[0])))
        assert float(enhancer.gate_weight(dim)) == pytest.approx(expected, abs=1e-5), cue_p
    enhancer.content_cue = _decided(0.999)
    assert float(enhancer.gate_weight(dim)) == 1.0  # sure enough to enhance fully
    enhancer.content_cue = _decided(0.5)  # no evidence either way: the gate's weight stands
    assert float(enhancer.gate_weight(dim)) == float(gate(dim)) == 0.0
    enhancer.content_cue = _decided(0.01)  # the cue never lowers the gate's weight
    assert float(enhancer.gate_weight(_grey(40))) == float(gate(_grey(40))) == 1.0
    enhancer.content_cue = None
    assert float(enhancer.gate_weight(dim)) == 0.0


def test_a_cue_that_calls_a_frame_normal_leaves_the_noise_evidence_as_it_is():
    enhancer = load_enhancer("default")
    gate = enhancer.exposure_gate
    dim = _grey(94)
    p = float(gate.probability(dim))
    assert CUE_FLOOR <= p < gate.odds[0]
    for evidence in (2.5, 3.0, 5.0):  # the gate and the noise, with no cue and with a cue sure of "normal"
        odds = p / (1 - p) * np.exp(evidence)
        expected = min(1.0, max(0.0, (odds / (1 + odds) - gate.odds[0]) / (gate.odds[1] - gate.odds[0])))
        assert expected > 0.0
        for cue_p in (0.5, 0.1, 0.001):
            enhancer.content_cue = _decided(cue_p)
            weight = float(enhancer.gate_weight(dim, evidence=torch.tensor([evidence])))
            assert weight == pytest.approx(expected, abs=1e-5), (evidence, cue_p)
        enhancer.content_cue = _decided(0.9)  # a cue that calls it dark still adds
        assert float(enhancer.gate_weight(dim, evidence=torch.tensor([evidence]))) >= expected


def test_the_cue_runs_only_where_it_can_change_the_weight_and_decides_the_same_either_way():
    cue = packaged_cue()
    gate = load_enhancer("default").exposure_gate
    calls = []
    cue.register_forward_hook(lambda *_: calls.append(1))
    small = torch.rand(4, 3, 45, 60)
    cases = {  # gate probabilities and the weights the gate gives them: (settled?, ...)
        "night and bright day": (True, torch.tensor([1.0, 0.9, 0.01, 0.0]), torch.tensor([1.0, 1.0, 0.0, 0.0])),
        "one frame in between": (False, torch.tensor([1.0, 0.3, 0.01, 0.0]), torch.tensor([1.0, 0.0, 0.0, 0.0])),
    }
    for name, (settled, probability, weight) in cases.items():
        assert torch.equal(gate.weight_of(probability), weight), name
        calls.clear()
        fast = cue.weight(small, probability, weight_of=gate.weight_of)
        assert (not calls) == settled, name
        with torch.no_grad():  # the full computation, as export traces it
            combined = torch.sigmoid(torch.logit(probability.clamp(1e-6, 1 - 1e-6)) + cue(small).clamp(min=0))
            undecided = (probability >= CUE_FLOOR) & (weight < 1)
            full = torch.where(undecided, torch.maximum(weight, gate.weight_of(combined)), weight)
        assert torch.allclose(fast, full, atol=1e-6), name


def test_the_stage_enhances_a_frame_the_cue_calls_dark_and_passes_it_through_otherwise():
    rng = np.random.default_rng(0)
    rgb = np.clip(94 + rng.normal(0, 6, (90, 120, 3)), 0, 255).round().astype(np.uint8)
    outputs = {}
    for name, cue in (("confident", _decided(0.99)), ("unsure", _decided(0.5))):
        enhancer = load_enhancer("default")
        enhancer.content_cue = cue
        stage = CpuStage(enhancer)
        stage.configure(stage.settings, temporal=False)
        outputs[name] = stage(Frame(rgb.copy())).rgb
    assert np.array_equal(outputs["unsure"], rgb)  # the gate leaves it alone
    assert outputs["confident"].astype(float).mean() > rgb.mean() + 10  # lifted


def _scenes(count: int, seed: int, *, dark: bool) -> list[torch.Tensor]:
    """Textured 3×24×32 thumbnails; the dark ones dimmed with a steeper curve and noise."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        x = torch.rand(3, 6, 8, generator=generator).repeat_interleave(4, 1).repeat_interleave(4, 2)
        x = 0.2 + 0.7 * x
        if dark:
            x = 0.6 * x**1.6 + 0.03 * torch.randn(x.shape, generator=generator)
        out.append(x.clamp(0, 1))
    return out


def test_training_separates_its_sets_deterministically_and_the_checkpoint_round_trips(tmp_path):
    normal, dark = _scenes(24, 0, dark=False), _scenes(24, 1, dark=True)
    cue = train_content_cue(normal, dark, steps=150, batch=8, crop=16)
    again = train_content_cue(normal, dark, steps=150, batch=8, crop=16)
    test_normal, test_dark = torch.stack(_scenes(8, 2, dark=False)), torch.stack(_scenes(8, 3, dark=True))
    with torch.no_grad():
        assert float(cue.probability(test_dark).min()) > 0.5 > float(cue.probability(test_normal).max())
        assert torch.equal(cue.probability(test_dark), again.probability(test_dark))
    save_cue(cue, str(tmp_path / "cue.pt"), provenance={"data": "test"})
    checkpoint = load_checkpoint(tmp_path / "cue.pt", kind=CUE_KIND)
    loaded = ContentCue(**checkpoint["arch"])
    loaded.load_state_dict(checkpoint["state_dict"])
    with torch.no_grad():
        assert torch.equal(loaded.eval().probability(test_dark), cue.probability(test_dark))
    with pytest.raises(ValueError, match="normal and under-exposed"):
        train_content_cue([], dark)

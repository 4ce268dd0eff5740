"""Checkpoint format: round trip, provenance, run-time defaults and clear refusals."""

from __future__ import annotations

import pytest
import torch

from sagc.core.errors import SagcError
from sagc.models import GammaEstimator, load_checkpoint, load_enhancer, named_weights, save_enhancer


def test_round_trip_keeps_weights_and_provenance(tmp_path):
    torch.manual_seed(3)
    estimator = GammaEstimator()
    path = save_enhancer(tmp_path / "w.pt", estimator, scale=6.0, gain=1.5, provenance={"steps": 7})
    enhancer = load_enhancer(path)
    assert enhancer.scale == 6.0 and enhancer.gain == 1.5
    assert not enhancer.training
    assert all(not p.requires_grad for p in enhancer.parameters())
    for key, value in estimator.state_dict().items():
        torch.testing.assert_close(enhancer.estimator.state_dict()[key], value)
    checkpoint = load_checkpoint(path)
    assert checkpoint["provenance"] == {"steps": 7}
    assert checkpoint["arch"] == {"width": 32}
    assert load_enhancer(path, scale=2.0, gain=1.0).scale == 2.0


def test_round_trip_keeps_the_context_option(tmp_path):
    torch.manual_seed(5)
    estimator = GammaEstimator(context=8).eval()
    path = save_enhancer(tmp_path / "w.pt", estimator)
    assert load_checkpoint(path)["arch"] == {"width": 32, "context": 8}
    enhancer = load_enhancer(path)
    assert enhancer.estimator.context == 8
    x = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        torch.testing.assert_close(enhancer.estimator(x), estimator(x))


def test_loads_with_weights_only(tmp_path):
    path = save_enhancer(tmp_path / "w.pt", GammaEstimator())
    assert torch.load(path, weights_only=True)["kind"] == "sagc.enhancer"


def test_missing_file(tmp_path):
    with pytest.raises(SagcError, match="weights file not found"):
        load_enhancer(tmp_path / "nope.pt")


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a checkpoint" * 10)
    with pytest.raises(SagcError, match="is not a sagc checkpoint"):
        load_enhancer(junk)


def test_wrong_kind(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}, "kind": "something.else"}, other)
    with pytest.raises(SagcError, match="not a sagc enhancer checkpoint"):
        load_enhancer(other)
    torch.save(torch.zeros(3), other)
    with pytest.raises(SagcError, match="not a sagc enhancer checkpoint"):
        load_enhancer(other)


def test_mismatched_weights(tmp_path):
    path = save_enhancer(tmp_path / "w.pt", GammaEstimator())
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["arch"] = {"width": 16}
    torch.save(checkpoint, path)
    with pytest.raises(SagcError, match="do not match"):
        load_enhancer(path)


def test_default_name_is_clear_when_not_installed():
    if "default" in named_weights():
        enhancer = load_enhancer("default")
        assert sum(p.numel() for p in enhancer.estimator.parameters()) == 10_561
    else:
        with pytest.raises(SagcError, match="no default weights are installed"):
            load_enhancer("default")

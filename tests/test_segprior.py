"""The semantic prior: backbone initialisation, strict frozen loading, half-precision files."""

from __future__ import annotations

import torch
from torchvision.models import mobilenet_v2

from sagc.models import named_weights
from sagc.models.segprior import SegPrior, load_segprior, save_segprior


def test_backbone_initialised_from_imagenet_layout():
    torch.manual_seed(0)
    imagenet = mobilenet_v2(weights=None).state_dict()
    model = SegPrior(num_classes=11, aspp_channels=16)
    model.load_backbone(imagenet)
    state = model.state_dict()
    torch.testing.assert_close(state["low.0.0.weight"], imagenet["features.0.0.weight"])
    torch.testing.assert_close(state["high.17.conv.2.weight"], imagenet["features.17.conv.2.weight"])
    torch.testing.assert_close(state["high.4.conv.0.1.running_mean"], imagenet["features.4.conv.0.1.running_mean"])


def test_output_is_logits_at_input_size():
    model = SegPrior(num_classes=7, aspp_channels=16).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 50, 70)).shape == (2, 7, 50, 70)


def test_saved_prior_loads_strict_frozen_and_in_eval(tmp_path):
    torch.manual_seed(0)
    model = SegPrior(num_classes=11, aspp_channels=16).eval()
    path = save_segprior(tmp_path / "prior.pt", model, provenance={"made_by": "test"}, half=True)
    loaded = load_segprior(path)
    assert not loaded.training
    assert all(not p.requires_grad for p in loaded.parameters())
    assert set(loaded.state_dict()) == set(model.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=5e-2, rtol=0)
        assert (loaded(x).argmax(1) == model(x).argmax(1)).float().mean() > 0.95


def test_packaged_prior_loads_frozen():
    installed = named_weights()
    assert installed["segprior_camvid"].stat().st_size < 10 * 1024 * 1024
    prior = load_segprior("segprior_camvid")
    assert prior.num_classes == 11 and not prior.training
    assert all(not p.requires_grad for p in prior.parameters())
    assert set(prior.state_dict()) == set(SegPrior(num_classes=11, aspp_channels=prior.aspp_channels).state_dict())

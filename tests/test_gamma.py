"""GammaEstimator, apply_gamma and Enhancer: shapes, ranges, gradients, dtypes, compilation."""

from __future__ import annotations

import pytest
import torch

from sagc.models import ApplyGamma, Enhancer, GammaEstimator, apply_gamma


@pytest.fixture
def enhancer() -> Enhancer:
    torch.manual_seed(0)
    return Enhancer(GammaEstimator(), scale=4.0).eval()


def test_parameter_count_matches_paper():
    assert sum(p.numel() for p in GammaEstimator().parameters()) == 10_561


def test_gamma_in_open_unit_interval_and_same_size():
    torch.manual_seed(1)
    gamma = GammaEstimator()(torch.rand(2, 3, 33, 47))
    assert gamma.shape == (2, 3, 33, 47)
    assert gamma.min() > 0 and gamma.max() < 1


def test_apply_gamma_hand_computed():
    x = torch.tensor([0.25, 0.5, 1.0, 0.0]).view(1, 4, 1, 1)
    gamma = torch.tensor([0.5, 0.5, 0.3, 0.5]).view(1, 4, 1, 1)
    expected = torch.tensor([0.5, 0.5**0.5, 1.0, 1e-4**0.5]).view(1, 4, 1, 1)
    torch.testing.assert_close(apply_gamma(x, gamma), expected)


def test_module_equals_function():
    x, gamma = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(ApplyGamma()(x, gamma), apply_gamma(x, gamma))


def test_output_never_darker_than_input(enhancer):
    x = torch.rand(2, 3, 64, 80)
    y = enhancer(x)
    assert (y >= x - 1e-6).all()
    assert y.max() <= 1.0


@pytest.mark.parametrize("scale", [1.0, 2.0, 3.5, 8.0])
def test_scale_path_shapes(scale):
    enhancer = Enhancer(GammaEstimator(), scale=scale)
    x = torch.rand(1, 3, 45, 61)
    low = enhancer.estimate(x)
    assert tuple(low.shape[-2:]) == enhancer.low_resolution_size(45, 61)
    assert enhancer(x).shape == x.shape


def test_gain_brightens_more(enhancer):
    x = torch.rand(1, 3, 32, 32) * 0.3
    brighter = Enhancer(enhancer.estimator, scale=4.0, gain=1.5).eval()
    assert brighter(x).mean() > enhancer(x).mean()


def test_bad_input_raises_with_shape(enhancer):
    with pytest.raises(ValueError, match=r"\[1, 4, 8, 8\]"):
        enhancer(torch.rand(1, 4, 8, 8))
    with pytest.raises(TypeError):
        enhancer(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError):
        Enhancer(GammaEstimator(), scale=0.5)


def test_gradcheck_float64():
    torch.manual_seed(0)
    enhancer = Enhancer(GammaEstimator(width=4), scale=2.0).double()
    x = (torch.rand(1, 3, 6, 6, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(enhancer, (x,), eps=1e-6, atol=1e-4)
    gamma = torch.rand(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    x2 = (torch.rand(1, 3, 4, 4, dtype=torch.float64) + 0.1).clamp(max=1).requires_grad_()
    assert torch.autograd.gradcheck(apply_gamma, (x2, gamma))


def test_every_parameter_gets_gradient(enhancer):
    enhancer.train()
    enhancer(torch.rand(1, 3, 32, 32)).mean().backward()
    for name, p in enhancer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_close_to_float32(enhancer, dtype):
    x = torch.rand(1, 3, 40, 56)
    reference = enhancer(x)
    low = Enhancer(GammaEstimator(), scale=4.0)
    low.load_state_dict(enhancer.state_dict())
    y = low.to(dtype)(x.to(dtype))
    assert y.dtype == dtype
    torch.testing.assert_close(y.float(), reference, atol=2e-2, rtol=0)


def test_channels_last_matches(enhancer):
    x = torch.rand(1, 3, 40, 56)
    y = enhancer.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(y, enhancer(x))


def test_compiled_equals_eager(enhancer):
    x = torch.rand(1, 3, 40, 56)
    torch.testing.assert_close(torch.compile(enhancer)(x), enhancer(x), atol=1e-5, rtol=1e-5)


def test_torch_export_equals_eager(enhancer):
    x = torch.rand(1, 3, 40, 56)
    program = torch.export.export(enhancer, (x,))
    torch.testing.assert_close(program.module()(x), enhancer(x))


def _corner_response(estimator: GammaEstimator) -> float:
    """How much γ in the top rows moves when only rows 16 and below (9+ pixels away) change."""
    torch.manual_seed(3)
    x = torch.rand(1, 3, 64, 64)
    y = x.clone()
    y[..., 16:, :] = 0.0
    with torch.no_grad():
        return float((estimator(x)[..., :4, :4] - estimator(y)[..., :4, :4]).abs().max())


def _input_sensitive(estimator: GammaEstimator) -> GammaEstimator:
    """Same weights for every variant, large enough that the output follows the input
    (at PyTorch's default initialisation the biases dominate and γ barely moves)."""
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for parameter in estimator.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return estimator


def test_context_adds_no_parameters_and_sees_the_whole_picture():
    local = _input_sensitive(GammaEstimator())
    pooled = _input_sensitive(GammaEstimator(context=8))
    assert sum(p.numel() for p in pooled.parameters()) == 10_561
    assert pooled.state_dict().keys() == local.state_dict().keys()
    # the paper's trunk sees 7 pixels either side of each output: a change 12 rows away is invisible
    assert _corner_response(local) == 0.0
    assert _corner_response(pooled) > 1e-4


def test_context_output_range_and_batch_independence():
    torch.manual_seed(4)
    estimator = GammaEstimator(context=8)
    a, b = torch.rand(1, 3, 20, 28), torch.rand(1, 3, 20, 28) * 0.2
    both = estimator(torch.cat([a, b]))
    assert both.min() > 0 and both.max() < 1
    # the pooled channels are per image: batching must not mix pictures
    torch.testing.assert_close(both[:1], estimator(a))
    torch.testing.assert_close(both[1:], estimator(b))


@pytest.mark.parametrize("context", [-1, 33])
def test_context_out_of_range(context):
    with pytest.raises(ValueError, match="context"):
        GammaEstimator(context=context)

"""Loss terms: hand-computed values, zeros where they must be zero, gradients reach the enhancer."""

from __future__ import annotations

import pytest
import torch

from sagc.models import Enhancer, GammaEstimator
from sagc.models.critic import SegCritic
from sagc.models.segprior import SegPrior
from sagc.train import losses


def _global(x: torch.Tensor) -> torch.Tensor:
    return x.new_ones(x.shape[0], 1, *x.shape[-2:])


def test_luma_weights():
    x = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert losses.luma(x).item() == pytest.approx(0.2126)


def test_brightness_hand_computed_single_class():
    enhanced = torch.full((1, 3, 2, 2), 0.2)
    reference = torch.full((2, 3, 2, 2), 0.5)
    value = losses.brightness_loss(enhanced, _global(enhanced), reference, _global(reference))
    assert value.item() == pytest.approx(0.3, abs=1e-5)


def test_brightness_per_class_uses_matching_classes():
    # left half class 0 (luminance 0.1), right half class 1 (0.9); the reference has only class 1 at 0.9
    enhanced = torch.zeros(1, 3, 1, 2)
    enhanced[..., 0], enhanced[..., 1] = 0.1, 0.9
    masks = torch.zeros(1, 2, 1, 2)
    masks[0, 0, 0, 0] = masks[0, 1, 0, 1] = 1
    reference = torch.full((1, 3, 1, 2), 0.9)
    ref_masks = torch.zeros(1, 2, 1, 2)
    ref_masks[0, 1] = 1
    # class 0 is absent from the reference, so only class 1 counts, and it matches
    assert losses.brightness_loss(enhanced, masks, reference, ref_masks).item() == pytest.approx(0, abs=1e-5)
    # the global loss would see mean 0.5 vs 0.9
    assert losses.brightness_loss(enhanced, _global(enhanced), reference, _global(reference)).item() == pytest.approx(
        0.4, abs=1e-5
    )


def test_relative_brightness_ignores_the_overall_level():
    # two classes lit 1 : 3 in both pictures; the enhanced one is half as bright overall
    enhanced = torch.zeros(1, 3, 1, 2)
    enhanced[..., 0], enhanced[..., 1] = 0.1, 0.3
    reference = enhanced * 2
    masks = torch.zeros(1, 2, 1, 2)
    masks[0, 0, 0, 0] = masks[0, 1, 0, 1] = 1
    assert losses.brightness_loss(enhanced, masks, reference, masks).item() == pytest.approx(0.2, abs=1e-5)
    assert losses.brightness_loss(enhanced, masks, reference, masks, relative=True).item() == pytest.approx(0, abs=1e-5)
    # 1 : 1 against 1 : 3: relative class means 1, 1 vs. 0.5, 1.5 → mean |difference| 0.5
    flat = torch.full((1, 3, 1, 2), 0.2)
    assert losses.brightness_loss(flat, masks, reference, masks, relative=True).item() == pytest.approx(0.5, abs=1e-4)


def test_exposure_loss_matches_sorted_exposures():
    levels = torch.tensor([0.1, 0.5, 0.3]).view(3, 1, 1, 1).expand(3, 3, 4, 4)
    reference = torch.tensor([0.4, 0.2, 0.6]).view(3, 1, 1, 1).expand(3, 3, 4, 4)
    # sorted 0.1 0.3 0.5 against the reference's quantiles 0.2 0.4 0.6: each 0.1 off
    assert losses.exposure_loss(levels, reference).item() == pytest.approx(0.1, abs=1e-5)
    # the same exposures in another order cost nothing: only the distribution is matched
    assert losses.exposure_loss(reference.flip(0), reference).item() == pytest.approx(0, abs=1e-6)
    # a larger reference batch is summarised by its quantiles at the batch's levels
    wide = torch.linspace(0, 1, 101).view(101, 1, 1, 1).expand(101, 3, 2, 2)
    halves = torch.tensor([0.25, 0.75]).view(2, 1, 1, 1).expand(2, 3, 2, 2)
    assert losses.exposure_loss(halves, wide).item() == pytest.approx(0, abs=1e-5)


def test_running_reference_pools_batches_with_momentum():
    torch.manual_seed(6)
    first, second = torch.rand(3, 3, 8, 8), torch.rand(2, 3, 8, 8) * 0.5
    masks_first = torch.softmax(torch.randn(3, 4, 8, 8), 1)
    masks_second = torch.softmax(torch.randn(2, 4, 8, 8), 1)
    # momentum 0: the targets are those of the latest batch alone
    plain = losses.RunningReference(4, momentum=0.0)
    plain.update(first, masks_first)
    got, want = plain.update(second, masks_second), losses.reference_targets(second, masks_second)
    for name in ("luma", "relative", "spread", "chroma", "share"):
        torch.testing.assert_close(getattr(got, name), getattr(want, name))
    # momentum 0.75: class means are pooled with weights 0.75 : 0.25 on masked sums and masses
    running = losses.RunningReference(4, momentum=0.75, window=4)
    running.update(first, masks_first)
    targets = running.update(second, masks_second)
    values = [losses.luma(first), losses.luma(second)]
    sums = 0.75 * torch.einsum("nchw,nkhw->c", masks_first, values[0]) + 0.25 * torch.einsum(
        "nchw,nkhw->c", masks_second, values[1]
    )
    mass = 0.75 * masks_first.sum((0, 2, 3)) + 0.25 * masks_second.sum((0, 2, 3))
    torch.testing.assert_close(targets.luma, sums / (mass + 1e-6))
    # the exposure window keeps the last 4 images: 1 of the first batch, both of the second
    exposures = torch.cat([v.mean((1, 2, 3)) for v in values])
    torch.testing.assert_close(targets.exposures, exposures[1:].sort().values)
    # buffers: the state round-trips (exact resume)
    copy = losses.RunningReference(4, momentum=0.75, window=4)
    copy.load_state_dict(running.state_dict())
    torch.testing.assert_close(copy.targets().luma, targets.luma)
    assert int(copy.seen) == 5


def test_target_forms_equal_batch_forms():
    torch.manual_seed(7)
    x, y = torch.rand(2, 3, 6, 6), torch.rand(3, 3, 6, 6)
    m, n = torch.softmax(torch.rand(2, 4, 6, 6), 1), torch.softmax(torch.rand(3, 4, 6, 6), 1)
    targets = losses.reference_targets(y, n)
    assert losses.brightness_to(x, m, targets) == losses.brightness_loss(x, m, y, n)
    assert losses.color_to(x, m, targets) == losses.color_loss(x, m, y, n)
    assert losses.contrast_to(x, m, targets) == losses.contrast_loss(x, m, y, n)
    assert losses.exposure_to(x, targets.exposures) == losses.exposure_loss(x, y)


def test_contrast_hand_computed_and_zero_for_equal_spread():
    # grey pixels 0.2 and 0.6 (std 0.2) against a reference of 0.1 and 0.9 (std 0.4)
    enhanced = torch.tensor([0.2, 0.6]).view(1, 1, 1, 2).expand(1, 3, 1, 2).contiguous()
    reference = torch.tensor([0.1, 0.9]).view(1, 1, 1, 2).expand(1, 3, 1, 2).contiguous()
    value = losses.contrast_loss(enhanced, _global(enhanced), reference, _global(reference))
    assert value.item() == pytest.approx(0.2, abs=1e-3)
    darker = reference - 0.05  # a shifted copy: other brightness, same spread
    assert losses.contrast_loss(darker, _global(darker), reference, _global(reference)).item() == (
        pytest.approx(0, abs=1e-3)
    )
    flat = torch.full((1, 3, 1, 2), 0.5, requires_grad=True)
    losses.contrast_loss(flat + torch.tensor([0.0, 0.01]).view(1, 1, 1, 2), _global(flat), reference,
                         _global(reference)).backward()  # fmt: skip
    assert flat.grad is not None and flat.grad.abs().sum() > 0


def test_color_hand_computed():
    enhanced = torch.tensor([0.2, 0.2, 0.4]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    reference = torch.tensor([0.3, 0.3, 0.3]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    value = losses.color_loss(enhanced, _global(enhanced), reference, _global(reference))
    # chromaticities (0.25, 0.25, 0.5) vs (1/3, 1/3, 1/3): |Δ| summed = 1/12 + 1/12 + 1/6
    assert value.item() == pytest.approx(1 / 3, abs=1e-5)
    assert losses.color_loss(reference, _global(reference), reference * 2, _global(reference)).item() == pytest.approx(
        0, abs=1e-6
    )


def test_smoothness_hand_computed_and_edge_weighting():
    gamma = torch.zeros(1, 3, 2, 2)
    gamma[..., 1] = 1.0  # a vertical step: |dx| = 1 on each row, dy = 0
    flat = _global(gamma)
    assert losses.smoothness_loss(gamma, flat).item() == pytest.approx(1.0)
    edge = torch.zeros(1, 2, 2, 2)
    edge[:, 0, :, 0] = edge[:, 1, :, 1] = 1  # the class boundary sits on the γ step
    assert losses.smoothness_loss(gamma, edge).item() == pytest.approx(torch.exp(torch.tensor(-2.0)).item())
    assert losses.smoothness_loss(torch.full((1, 3, 4, 4), 0.3), flat).item() == 0


def test_flip_loss_zero_for_equivariant_map():
    x = torch.rand(2, 3, 5, 7)
    pointwise = lambda t: t**0.5  # noqa: E731
    assert losses.flip_loss(pointwise(x), pointwise(x.flip(-1))).item() == 0
    assert losses.flip_loss(x, x).item() > 0


def test_reconstruction_zero_when_unchanged():
    x = torch.rand(1, 3, 4, 4)
    assert losses.reconstruction_loss(x, x).item() == 0
    assert losses.reconstruction_loss(x + 0.1, x).item() == pytest.approx(0.1, abs=1e-6)


def test_reference_forms_equal_target_forms():
    x, y = torch.rand(2, 3, 6, 6), torch.rand(2, 3, 6, 6)
    m = torch.softmax(torch.rand(2, 4, 6, 6), 1)
    targets = losses.reference_targets(y, m)
    assert losses.brightness_loss(x, m, y, m) == losses.brightness_to(x, m, targets)
    assert losses.color_loss(x, m, y, m) == losses.color_to(x, m, targets)
    assert losses.contrast_loss(x, m, y, m) == losses.contrast_to(x, m, targets)


@pytest.fixture(scope="module")
def prior() -> SegPrior:
    torch.manual_seed(0)
    return SegPrior(num_classes=5, aspp_channels=16).eval().requires_grad_(False)


@pytest.mark.parametrize(
    "term",
    [
        "bright",
        "relative_bright",
        "exposure",
        "contrast",
        "color",
        "smooth",
        "flip",
        "recon",
        "invariance",
        "adversarial",
    ],
)
def test_gradient_reaches_enhancer(prior, term):
    torch.manual_seed(1)
    enhancer = Enhancer(GammaEstimator(width=8), scale=2.0)
    critic = SegCritic(num_classes=5, width=8)
    low, normal = torch.rand(2, 3, 32, 32) * 0.3, torch.rand(2, 3, 32, 32)
    x = enhancer.prepare(low)
    gamma = enhancer.estimate(x)
    enhanced = enhancer.apply(x, gamma)
    masks = torch.softmax(prior(enhanced), 1)
    normal_masks = torch.softmax(prior(normal), 1)
    value = {
        "bright": lambda: losses.brightness_loss(enhanced, masks.detach(), normal, normal_masks),
        "relative_bright": lambda: losses.brightness_loss(
            enhanced, masks.detach(), normal, normal_masks, relative=True
        ),
        "exposure": lambda: losses.exposure_loss(enhanced, normal),
        "contrast": lambda: losses.contrast_loss(enhanced, masks.detach(), normal, normal_masks),
        "color": lambda: losses.color_loss(enhanced, masks.detach(), normal, normal_masks),
        "smooth": lambda: losses.smoothness_loss(gamma, masks.detach()),
        "flip": lambda: losses.flip_loss(enhanced, enhancer(low.flip(-1))),
        "recon": lambda: losses.reconstruction_loss(enhancer(normal), normal),
        "invariance": lambda: losses.invariance_loss(enhanced, enhancer(low * 0.5)),
        "adversarial": lambda: losses.generator_loss(critic.requires_grad_(False), masks),
    }[term]()
    value.backward()
    grads = [p.grad for p in enhancer.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    assert all(p.grad is None for p in prior.parameters())


def test_invariance_compares_block_means_not_noise():
    torch.manual_seed(2)
    scene = torch.rand(1, 3, 1, 1) * 0.5 + torch.linspace(0, 0.4, 32).view(1, 1, 1, 32)
    scene = scene.expand(1, 3, 32, 32)
    noisy = scene + 0.05 * torch.randn(1, 3, 32, 32)
    assert losses.invariance_loss(scene, noisy) < 0.2 * (scene - noisy).abs().mean()
    assert losses.invariance_loss(scene, scene * 0.5) == pytest.approx(float((scene * 0.5).mean()), rel=1e-4)
    assert losses.invariance_loss(scene, scene) == 0


def test_critic_loss_trains_only_the_critic(prior):
    critic = SegCritic(num_classes=5, width=8)
    real = torch.softmax(torch.rand(2, 5, 32, 32), 1)
    fake_source = torch.rand(2, 5, 32, 32, requires_grad=True)
    loss = losses.critic_loss(critic, real, torch.softmax(fake_source, 1))
    loss.backward()
    assert torch.isfinite(loss)
    assert fake_source.grad is None
    assert all(p.grad is not None for p in critic.parameters())
    assert losses.gradient_penalty(critic, real, real).item() >= 0

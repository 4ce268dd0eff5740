"""SAGC's unsupervised losses: each a plain function plus a thin module.

Conventions: images N×3×H×W in [0, 1]; ``masks`` are soft class maps N×C×H×W that sum to 1
over C (a segmentation softmax, or a single all-ones class when semantics are switched off);
γ maps are N×3×h×w. Luminance is Rec.709 luma.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sagc.ops.colour import luma

__all__ = [
    "ReferenceTargets",
    "RunningReference",
    "reference_targets",
    "brightness_to",
    "exposure_to",
    "color_to",
    "contrast_to",
    "class_means",
    "brightness_loss",
    "exposure_loss",
    "color_loss",
    "contrast_loss",
    "smoothness_loss",
    "flip_loss",
    "invariance_loss",
    "reconstruction_loss",
    "gradient_penalty",
    "critic_loss",
    "generator_loss",
]

_EPS = 1e-6


def _resize_masks(masks: Tensor, size: torch.Size) -> Tensor:
    if masks.shape[-2:] == size:
        return masks
    return F.interpolate(masks, size=size, mode="bilinear", align_corners=False)


def class_means(values: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    """Soft-masked means per image and class: (N×C×K means, N×C mask mass share).

    ``values`` is N×K×H×W; the share is each class's fraction of the image.
    """
    masks = _resize_masks(masks, values.shape[-2:])
    mass = masks.sum((-2, -1))  # N×C
    sums = torch.einsum("nchw,nkhw->nck", masks, values)
    means = sums / (mass.unsqueeze(-1) + _EPS)
    return means, mass / mass.sum(1, keepdim=True).clamp(min=_EPS)


@dataclass(frozen=True)
class ReferenceTargets:
    """What the normal-light side of the losses boils down to, per class (C classes).

    ``luma``: mean luminance; ``relative``: mean of luminance over its image's mean;
    ``spread``: luminance standard deviation; ``chroma``: (r, g, b)/(r+g+b) of the mean colour
    (C×3); ``share``: each class's fraction of the pixels; ``exposures``: sorted mean
    luminances of the reference images (for :func:`exposure_loss`).
    """

    luma: Tensor
    relative: Tensor
    spread: Tensor
    chroma: Tensor
    share: Tensor
    exposures: Tensor


def _statistics(reference: Tensor, masks: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class sums (C×6: luma, luma², relative luma, r, g, b), class mass (C), exposures (N)."""
    values = luma(reference)
    exposures = values.mean((-3, -2, -1))
    relative = values / exposures.view(-1, 1, 1, 1).clamp(min=_EPS)
    stacked = torch.cat([values, values * values, relative, reference], 1)
    masks = _resize_masks(masks, reference.shape[-2:])
    return torch.einsum("nchw,nkhw->ck", masks, stacked), masks.sum((0, -2, -1)), exposures


def _targets(sums: Tensor, mass: Tensor, exposures: Tensor) -> ReferenceTargets:
    means = sums / (mass.unsqueeze(-1) + _EPS)
    return ReferenceTargets(
        luma=means[:, 0],
        relative=means[:, 2],
        spread=torch.sqrt((means[:, 1] - means[:, 0] ** 2).clamp(min=0) + _EPS),
        chroma=_chromaticity(means[:, 3:]),
        share=mass / mass.sum().clamp(min=_EPS),
        exposures=exposures.sort().values,
    )


def reference_targets(reference: Tensor, reference_masks: Tensor) -> ReferenceTargets:
    """Targets pooled over one batch of unpaired normal-light images (SAGC's reference)."""
    return _targets(*_statistics(reference, reference_masks))


class RunningReference(nn.Module):
    """Targets pooled over many normal-light batches: exponential moving sums per class.

    One batch of eight crops gives a noisy idea of how bright roads or skies are in normal
    light; summing over the last ~1/(1 − ``momentum``) batches gives the same expectation with
    a fraction of the noise. Exposures are kept for the last ``window`` images. Buffers, so
    the state checkpoints and resumes exactly.
    """

    def __init__(self, num_classes: int, *, momentum: float = 0.98, window: int = 512) -> None:
        super().__init__()
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.register_buffer("sums", torch.zeros(num_classes, 6))
        self.register_buffer("mass", torch.zeros(num_classes))
        self.register_buffer("exposures", torch.zeros(window))
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, reference: Tensor, reference_masks: Tensor) -> ReferenceTargets:
        """Fold in one normal-light batch and return the targets so far."""
        sums, mass, exposures = _statistics(reference.float(), reference_masks.float())
        keep = self.momentum if int(self.seen) else 0.0
        self.sums.mul_(keep).add_(sums, alpha=1 - keep)
        self.mass.mul_(keep).add_(mass, alpha=1 - keep)
        window = self.exposures.numel()
        slots = (self.seen + torch.arange(exposures.numel(), device=exposures.device)) % window
        self.exposures[slots] = exposures
        self.seen += exposures.numel()
        return self.targets()

    def targets(self) -> ReferenceTargets:
        filled = self.exposures[: min(int(self.seen), self.exposures.numel())]
        return _targets(self.sums, self.mass, filled)


def _class_weights(share: Tensor, reference_share: Tensor) -> Tensor:
    """Weight each (image, class) by how present the class is in both; rows sum to 1."""
    weights = torch.minimum(share, reference_share.unsqueeze(0))
    return weights / weights.sum(1, keepdim=True).clamp(min=_EPS)


def brightness_loss(
    enhanced: Tensor, masks: Tensor, reference: Tensor, reference_masks: Tensor, *, relative: bool = False
) -> Tensor:
    """Per-class mean luminance of ``enhanced`` vs. the same class in unpaired ``reference``.

    ``relative``: each class mean is divided by its image's mean luminance on both sides, so
    only how the classes are lit against each other is matched (sky brighter than road, ...)
    and the overall level is left to :func:`exposure_loss`.
    """
    return brightness_to(enhanced, masks, reference_targets(reference, reference_masks), relative=relative)


def brightness_to(enhanced: Tensor, masks: Tensor, targets: ReferenceTargets, *, relative: bool = False) -> Tensor:
    """:func:`brightness_loss` against precomputed :class:`ReferenceTargets`."""
    values = luma(enhanced)
    if relative:
        values = values / values.mean((-2, -1), keepdim=True).clamp(min=_EPS)
    means, share = class_means(values, masks)
    target = targets.relative if relative else targets.luma
    weights = _class_weights(share, targets.share)
    return (weights * (means[..., 0] - target.to(means.dtype)).abs()).sum(1).mean()


def exposure_loss(enhanced: Tensor, reference: Tensor) -> Tensor:
    """Sorted mean luminances of a batch vs. the quantiles of an unpaired reference batch's.

    One-dimensional optimal transport between the two batches' exposures: the darkest
    enhanced image is matched with the darkest reference, the brightest with the brightest.
    Unlike pulling every image to the reference average, this keeps the order of the inputs'
    exposures, so a scene that was darker than usual before darkening stays darker after
    enhancement. Batches may differ in size.
    """
    return exposure_to(enhanced, luma(reference).mean((-3, -2, -1)).sort().values)


def exposure_to(enhanced: Tensor, reference_exposures: Tensor) -> Tensor:
    """:func:`exposure_loss` against sorted reference exposures (``ReferenceTargets.exposures``)."""
    exposures = luma(enhanced).mean((-3, -2, -1)).sort().values
    n, m = exposures.numel(), reference_exposures.numel()
    # the reference's empirical quantile at each image's level (i + ½) / n: with equal batch
    # sizes that is simply the i-th darkest reference
    index = ((torch.arange(n, device=exposures.device) * 2 + 1) * m).div(2 * n, rounding_mode="floor")
    return (exposures - reference_exposures[index.clamp(max=m - 1)].to(exposures.dtype)).abs().mean()


def _chromaticity(means: Tensor) -> Tensor:
    return means / (means.sum(-1, keepdim=True) + _EPS)


def color_loss(enhanced: Tensor, masks: Tensor, reference: Tensor, reference_masks: Tensor) -> Tensor:
    """Per-class channel ratios (r, g, b)/(r+g+b) of ``enhanced`` vs. the reference's."""
    return color_to(enhanced, masks, reference_targets(reference, reference_masks))


def color_to(enhanced: Tensor, masks: Tensor, targets: ReferenceTargets) -> Tensor:
    """:func:`color_loss` against precomputed :class:`ReferenceTargets`."""
    means, share = class_means(enhanced, masks)
    weights = _class_weights(share, targets.share)
    error = (_chromaticity(means) - targets.chroma.unsqueeze(0).to(means.dtype)).abs().sum(-1)
    return (weights * error).sum(1).mean()


def _class_spread(values: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    """Soft-masked standard deviation of ``values`` (N×1×H×W) per image and class, and the share."""
    means, share = class_means(torch.cat([values, values * values], 1), masks)
    variance = (means[..., 1] - means[..., 0] ** 2).clamp(min=0)
    return torch.sqrt(variance + _EPS), share


def contrast_loss(enhanced: Tensor, masks: Tensor, reference: Tensor, reference_masks: Tensor) -> Tensor:
    """Per-class luminance spread (standard deviation) of ``enhanced`` vs. the reference's.

    The second moment beside :func:`brightness_loss`'s first: matching class means alone lets
    an enhancer flatten a class (brighten its shadows more than its lit parts); this term asks
    each class to keep the contrast it has in normal-light pictures. A noisy γ map also adds
    spread, so it needs a strong smoothness term beside it (the default recipe: smooth 30).
    """
    return contrast_to(enhanced, masks, reference_targets(reference, reference_masks))


def contrast_to(enhanced: Tensor, masks: Tensor, targets: ReferenceTargets) -> Tensor:
    """:func:`contrast_loss` against precomputed :class:`ReferenceTargets`."""
    spread, share = _class_spread(luma(enhanced), masks)
    weights = _class_weights(share, targets.share)
    return (weights * (spread - targets.spread.to(spread.dtype)).abs()).sum(1).mean()


def smoothness_loss(gamma: Tensor, masks: Tensor) -> Tensor:
    """Total variation of γ, weighted by exp(−TV of the class maps) so class edges may stay sharp."""
    masks = _resize_masks(masks, gamma.shape[-2:])
    dx_g = (gamma[..., :, 1:] - gamma[..., :, :-1]).abs().mean(1, keepdim=True)
    dy_g = (gamma[..., 1:, :] - gamma[..., :-1, :]).abs().mean(1, keepdim=True)
    wx = torch.exp(-(masks[..., :, 1:] - masks[..., :, :-1]).abs().sum(1, keepdim=True))
    wy = torch.exp(-(masks[..., 1:, :] - masks[..., :-1, :]).abs().sum(1, keepdim=True))
    return (wx * dx_g).mean() + (wy * dy_g).mean()


def flip_loss(enhanced: Tensor, enhanced_of_flipped: Tensor) -> Tensor:
    """Mean |E(flip x) − flip E(x)|: zero for a flip-equivariant enhancer."""
    return (enhanced_of_flipped - enhanced.flip(-1)).abs().mean()


def invariance_loss(enhanced: Tensor, enhanced_twin: Tensor, *, block: int = 8) -> Tensor:
    """Mean |E(d₁) − E(d₂)| over ``block``×``block`` means, for two darkenings d₁, d₂ of one
    picture: the output should depend on the scene, not on how dark its capture was. Block
    means compare tone and exposure, not the two captures' different noise."""
    size = min(block, *enhanced.shape[-2:])
    return (F.avg_pool2d(enhanced, size) - F.avg_pool2d(enhanced_twin, size)).abs().mean()


def reconstruction_loss(enhanced_normal: Tensor, normal: Tensor) -> Tensor:
    """Mean |E(n) − n| for normal-light images n: well-exposed pictures should stay put."""
    return (enhanced_normal - normal).abs().mean()


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP: (‖∇ critic(mix)‖ − 1)² on random interpolates of real and fake maps."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mix = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mix).sum(), mix, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def critic_loss(
    critic: nn.Module, real: Tensor, fake: Tensor, *, gp_weight: float = 10.0, drift: float = 1e-3
) -> Tensor:
    """The critic's WGAN-GP objective on segmentation maps (fake is detached here).

    ``drift`` · critic(real)² keeps the scores near zero (they are otherwise defined only up to
    a constant and wander off, which makes the logged values meaningless).
    """
    fake = fake.detach()
    real_scores = critic(real)
    wasserstein = critic(fake).mean() - real_scores.mean()
    return wasserstein + gp_weight * gradient_penalty(critic, real, fake) + drift * real_scores.pow(2).mean()


def generator_loss(critic: nn.Module, fake: Tensor) -> Tensor:
    """The enhancer's adversarial term: −critic(seg(E(x))). Not detached: gradient reaches E."""
    return -critic(fake).mean()

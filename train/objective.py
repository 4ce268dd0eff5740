"""The enhancer's objective: every loss term of one batch, from the estimator's single forward pass."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sagc.models import Enhancer
from sagc.models.segprior import SegPrior

from . import losses

__all__ = ["enhancer_terms", "soft_masks"]


def soft_masks(prior: SegPrior | None, images: Tensor) -> Tensor:
    if prior is None:  # semantics switched off: one global class
        return images.new_ones(images.shape[0], 1, *images.shape[-2:])
    return torch.softmax(prior(images.contiguous(memory_format=torch.channels_last)), dim=1)


def enhancer_terms(
    enhancer: Enhancer,
    prior: SegPrior | None,
    critic: nn.Module | None,
    low: Tensor,
    normal: Tensor,
    adversarial: bool,
    *,
    running: losses.RunningReference | None = None,
    contrast: bool = False,
    exposure: bool = False,
    relative: bool = False,
    twins: Tensor | None = None,
) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """The enhancer's loss terms for one batch, plus the class maps the critic trains on.

    Low, flipped-low, normal images (and ``twins``, a second darkening of each low image, for
    the light-invariance term) go through the estimator as one batch: one forward pass per
    step, which DistributedDataParallel requires.
    """
    n, m = low.shape[0], normal.shape[0]
    parts = [low, low.flip(-1), normal] + ([twins] if twins is not None else [])
    x = enhancer.prepare(torch.cat(parts).contiguous(memory_format=torch.channels_last))
    gamma_all = enhancer.estimate(x)
    out = enhancer.apply(x, gamma_all)
    enhanced, enhanced_flipped, enhanced_normal = out[:n], out[n : 2 * n], out[2 * n : 2 * n + m]
    gamma = gamma_all[:n]
    with torch.no_grad():
        normal_masks = soft_masks(prior, normal)
    if adversarial:
        enhanced_masks = soft_masks(prior, enhanced)  # keeps the graph: the critic's gradient reaches E
    else:
        with torch.no_grad():
            enhanced_masks = soft_masks(prior, enhanced)
    weights = enhanced_masks.detach()
    if running is not None:
        targets = running.update(normal, normal_masks)
    else:
        targets = losses.reference_targets(normal, normal_masks)
    terms = {
        "bright": losses.brightness_to(enhanced, weights, targets, relative=relative),
        "color": losses.color_to(enhanced, weights, targets),
        "smooth": losses.smoothness_loss(gamma, weights),
        "flip": losses.flip_loss(enhanced, enhanced_flipped),
        "recon": losses.reconstruction_loss(enhanced_normal, normal),
    }
    if twins is not None:
        terms["invariance"] = losses.invariance_loss(enhanced, out[2 * n + m :])
    if exposure:
        terms["exposure"] = losses.exposure_to(enhanced, targets.exposures)
    if contrast:
        terms["contrast"] = losses.contrast_to(enhanced, weights, targets)
    if adversarial and critic is not None:
        critic.requires_grad_(False)
        terms["adversarial"] = losses.generator_loss(critic, enhanced_masks)
    return terms, enhanced_masks.detach(), normal_masks

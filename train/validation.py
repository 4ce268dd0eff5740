"""Validation of the enhancer as users run it: Dark-CamVid-val PSNR/SSIM and the identity check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from sagc.core.errors import SagcError
from sagc.core.synth import DAY_LIGHT, darken_sequence
from sagc.eval.metrics import psnr, ssim
from sagc.models import Enhancer
from sagc.stream.media.images import list_images

from .data import load_rgb

__all__ = ["IDENTITY_CAP", "dark_camvid", "validate"]


def dark_camvid(
    folder: str | Path, *, seed: int = 0, light: tuple[float, float] = DAY_LIGHT
) -> tuple[list[Tensor], list[Tensor]]:
    """(darkened, original) images of a folder, sorted by name: Dark-CamVid-val for CamVid val
    (``light=NIGHT_LIGHT``: Night-CamVid-val)."""
    originals = [load_rgb(p) for p in list_images(folder)]
    if not originals:
        raise SagcError(f"no validation images in {folder}")
    return list(darken_sequence(originals, seed=seed, light=light)), originals


IDENTITY_CAP = 100.0  # dB an unchanged image counts for in the mean identity PSNR


@torch.inference_mode()
def validate(
    enhancer: Enhancer, dark: Sequence[Tensor], clean: Sequence[Tensor], *, identity: bool = True
) -> dict[str, float]:
    """Mean PSNR/SSIM of enhanced dark images, and (``identity``) PSNR of enhanced clean images
    vs. themselves: the mean (an unchanged image counts as ``IDENTITY_CAP`` dB, not ∞) and the worst."""
    device = next(enhancer.parameters()).device
    scores: dict[str, list[float]] = {"psnr": [], "ssim": [], "input_psnr": []}
    if identity:
        scores["identity_psnr"] = []
    for low, ref in zip(dark, clean, strict=True):
        low, ref = low[None].to(device), ref[None].to(device)
        out = enhancer(low)
        scores["psnr"].append(float(psnr(out, ref)))
        scores["ssim"].append(float(ssim(out, ref)))
        scores["input_psnr"].append(float(psnr(low, ref)))
        if identity:
            scores["identity_psnr"].append(min(IDENTITY_CAP, float(psnr(enhancer(ref), ref))))
    means = {k: sum(v) / len(v) for k, v in scores.items()}
    return {**means, "identity_min_psnr": min(scores["identity_psnr"])} if identity else means

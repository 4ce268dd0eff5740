"""Image-quality and segmentation metrics: one implementation each, batched torch, any device.

Conventions: images are RGB, N×3×H×W, float in [0, 1]; PSNR and SSIM are computed on the
8-bit values the images quantise to (``round(x * 255)``), in float64, as the paper reports —
on the RGB channels by default, or with ``y_channel=True`` on MATLAB's ``rgb2ycbcr`` luma
(16…235, not rounded), the "Y" convention of super-resolution and enhancement papers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from sagc.ops.colour import LUMA_WEIGHTS, luma, matlab_y

__all__ = [
    "LUMA_WEIGHTS",
    "luma",
    "to_8bit",
    "matlab_y",
    "psnr",
    "ssim",
    "confusion_matrix",
    "iou_per_class",
    "flicker",
]

_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # truncate 3.5 σ, as scikit-image does: an 11×11 window
_K1, _K2 = 0.01, 0.03


def _check(x: Tensor, y: Tensor) -> None:
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"expected two N×C×H×W tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")


def to_8bit(x: Tensor) -> Tensor:
    """[0, 1] floats → 8-bit code values as float64 (0…255, integers)."""
    return torch.round(x.to(torch.float64).clamp(0, 1) * 255.0)


def _codes(x: Tensor, y_channel: bool) -> Tensor:
    code = to_8bit(x)
    return matlab_y(code) if y_channel else code


def psnr(x: Tensor, y: Tensor, *, y_channel: bool = False) -> Tensor:
    """Per-image PSNR in dB on 8-bit values; identical images give ``inf``."""
    _check(x, y)
    mse = (_codes(x, y_channel) - _codes(y, y_channel)).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(255.0**2 / mse)


def _gaussian_window(device: torch.device) -> Tensor:
    offsets = torch.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=torch.float64, device=device)
    g = torch.exp(-0.5 * (offsets / _SSIM_SIGMA) ** 2)
    g = g / g.sum()
    return g


def ssim(x: Tensor, y: Tensor, *, y_channel: bool = False) -> Tensor:
    """Per-image SSIM on 8-bit values: Gaussian 11×11 window (σ 1.5), K1 0.01, K2 0.03.

    Population covariances, valid-window mean, channels averaged: the same numbers as
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)``.
    """
    _check(x, y)
    a, b = _codes(x, y_channel), _codes(y, y_channel)
    # Blur in float32 (several times faster than float64 on CPU) after removing each channel's
    # mean: the second moments then stay small (error against scikit-image ~3e-6 on real pairs).
    offset_a = a.mean((2, 3), keepdim=True)
    offset_b = b.mean((2, 3), keepdim=True)
    a32, b32 = (a - offset_a).float(), (b - offset_b).float()
    stack = torch.cat([a32, b32, a32 * a32, b32 * b32, a32 * b32], 1)
    c = stack.shape[1]
    g = _gaussian_window(a.device).float()
    row = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    col = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    blurred = F.conv2d(F.conv2d(stack, row, groups=c), col, groups=c).double()
    mu_a, mu_b, aa, bb, ab = blurred.chunk(5, dim=1)
    var_a = aa - mu_a**2
    var_b = bb - mu_b**2
    cov = ab - mu_a * mu_b
    mu_a, mu_b = mu_a + offset_a, mu_b + offset_b
    c1, c2 = (_K1 * 255.0) ** 2, (_K2 * 255.0) ** 2
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return (num / den).flatten(2).mean(2).mean(1)


def confusion_matrix(pred: Tensor, target: Tensor, *, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """num_classes×num_classes counts, rows = truth, columns = prediction."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    keep = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        keep &= target != ignore_index
    index = target[keep].long() * num_classes + pred[keep].long()
    return torch.bincount(index, minlength=num_classes**2).view(num_classes, num_classes)


def iou_per_class(confusion: Tensor) -> Tensor:
    """Intersection over union per class from a confusion matrix (NaN where a class is absent)."""
    confusion = confusion.to(torch.float64)
    tp = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, math.nan))


def flicker(output_means: Tensor, input_means: Tensor, *, eps: float = 1e-8) -> float:
    """Temporal flicker of an enhanced clip relative to its input.

    ``F = Σ_t |m_out(t) − m_out(t−1)| / Σ_t |m_in(t) − m_in(t−1)|`` over per-frame mean luma
    ``m`` (1-D tensors, one value per frame). 0 on a static output; grows with brightness
    oscillation the output adds; 1 × the enhancer's brightening for an output that only
    follows the input.
    """
    if output_means.shape != input_means.shape or output_means.ndim != 1 or output_means.numel() < 2:
        raise ValueError(
            f"need two 1-D series of one length >= 2, got {tuple(output_means.shape)} and {tuple(input_means.shape)}"
        )
    change_out = output_means.double().diff().abs().sum()
    change_in = input_means.double().diff().abs().sum()
    return float(change_out / change_in.clamp(min=eps))

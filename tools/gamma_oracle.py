"""How good can ``x ** γ`` get on a paired set? Fit the best γ map per image and score it.

    python tools/gamma_oracle.py dark_camvid_val --scales 2 4 8 16

For each pair (``low/``, ``high/`` as made by ``sagc data darken``) and each estimation scale s,
γ is fitted per s×s cell by least squares in the log domain (γ = Σ ln x ln y / Σ (ln x)²,
clamped to (0, 1]), bilinearly upsampled like the enhancer does, and applied; the table gives
mean PSNR/SSIM — an upper bound for any network that predicts γ at that scale (up to the
log-domain fit not being PSNR-optimal). It also scores the best single global γ.

``--reexpose 0.42`` also scores the normal-light references themselves after one global power
that brings their mean luma to 0.42: what even a perfect picture scores when its overall level
is that of another collection (e.g. CamVid train, mean luma 0.42, against CamVid val, 0.33).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from sagc.eval.datasets import paired_folder
from sagc.eval.metrics import luma, psnr, ssim
from sagc.models.gamma import apply_gamma
from sagc.stream.media.frame import pixels_to_tensor
from sagc.stream.media.images import read_image


def oracle_gamma(x: torch.Tensor, y: torch.Tensor, scale: int) -> torch.Tensor:
    lx, ly = torch.log(x.clamp(min=1e-3)), torch.log(y.clamp(min=1e-3))
    num = F.avg_pool2d(lx * ly, scale, ceil_mode=True)
    den = F.avg_pool2d(lx * lx, scale, ceil_mode=True)
    gamma = (num / den.clamp(min=1e-9)).clamp(0.01, 1.0)
    return F.interpolate(gamma, size=x.shape[-2:], mode="bilinear", align_corners=False)


def reexposed(y: torch.Tensor, mean_luma: float, *, iterations: int = 40) -> torch.Tensor:
    """``y ** k`` with k found by bisection so that its mean luma is ``mean_luma``."""
    low, high = 0.05, 20.0
    y = y.clamp(min=1e-4)
    for _ in range(iterations):
        k = (low * high) ** 0.5
        if float(luma(y.pow(k)).mean()) > mean_luma:
            low = k
        else:
            high = k
    return y.pow((low * high) ** 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", help="folder with low/ and high/")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--globals", type=float, nargs="+", default=[0.5, 0.55, 0.6, 0.65, 0.7])
    parser.add_argument("--reexpose", type=float, nargs="*", default=[], help="mean luma levels to re-expose to")
    args = parser.parse_args()
    items = paired_folder(args.pairs)
    rows: dict[str, list[tuple[float, float]]] = {}
    means: list[float] = []
    for item in items:
        x = pixels_to_tensor(read_image(item.low).rgb).double()
        y = pixels_to_tensor(read_image(item.high).rgb).double()
        means.append(float(luma(y).mean()))
        for scale in args.scales:
            out = apply_gamma(x, oracle_gamma(x, y, scale))
            rows.setdefault(f"oracle γ map, scale {scale}", []).append((float(psnr(out, y)), float(ssim(out, y))))
        for g in args.globals:
            out = x.clamp(min=0).pow(g)
            rows.setdefault(f"global γ {g}", []).append((float(psnr(out, y)), float(ssim(out, y))))
        for level in args.reexpose:
            out = reexposed(y, level)
            # an image already at that level comes back unchanged: count it as 99 dB, not inf
            score = min(float(psnr(out, y)), 99.0)
            rows.setdefault(f"reference at luma {level}", []).append((score, float(ssim(out, y))))
    print(f"references' mean luma {np.mean(means):.3f} (range {min(means):.3f}–{max(means):.3f})")
    print(f"{len(items)} pairs from {args.pairs}")
    for name, values in rows.items():
        p, s = np.mean(values, axis=0)
        print(f"{name:<26} PSNR {p:6.2f} dB  SSIM {s:.4f}")


if __name__ == "__main__":
    main()

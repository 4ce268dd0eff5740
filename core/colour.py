"""Colour on the ground floor: Rec.709 luma, the one definition every room uses."""

from __future__ import annotations

from torch import Tensor

__all__ = ["LUMA_WEIGHTS", "luma"]

LUMA_WEIGHTS = (0.2126, 0.7152, 0.0722)
"""Rec.709 luma weights of R, G and B."""


def luma(x: Tensor) -> Tensor:
    """Rec.709 luma of RGB with channels at dim −3 (N×3×H×W → N×1×H×W, 3×H×W → 1×H×W).

    Weighted with Python numbers, not a tensor: no host-to-device copy, so it can run inside a
    CUDA graph (the exposure gate and the guided upsampling call it there)."""
    red, green, blue = LUMA_WEIGHTS
    return red * x.narrow(-3, 0, 1) + green * x.narrow(-3, 1, 1) + blue * x.narrow(-3, 2, 1)

"""The exposure gate: leave frames that are already well exposed alone.

An unpaired enhancer learns to lift dark pictures, and a trunk that sees 3×3 neighbourhoods of a
downscaled frame cannot tell a well-exposed street from a dark one reliably: it brightens both
(the shipped weights take CamVid originals to 13 dB against themselves). The gate looks at the
whole low-resolution frame, which the enhancer makes anyway, and measures two things: its mean
luma and the fraction of its pixels that are near white. A frame that is bright on average *and*
has highlights is well exposed; one that is dark on average, or has nothing near white (a dim
scene, a dark frame with a bright patch is still dark on average), is not. The per-frame weight

    w = 1 − ramp(mean luma; 0.2 → 0.3) · ramp(highlight fraction; 0.01 → 0.06)

scales the enhancement: ``γ' = 1 − w · (1 − γ)`` (``w = 0``: output = input) and the noise
reduction's strength. The thresholds were chosen on CamVid *train* (its originals and their
ISSR-darkened copies), never on val: see ``sagc/weights/default.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from sagc.core.colour import luma

__all__ = ["ExposureGate"]


def _ramp(value: Tensor, low: float, high: float) -> Tensor:
    return ((value - low) / (high - low)).clamp(0.0, 1.0)


@dataclass(frozen=True)
class ExposureGate:
    """Per-image enhancement weight in [0, 1] from a low-resolution N×3×h×w image in [0, 1].

    ``mean_luma`` and ``highlights`` are the (start, full) points of the two ramps; a pixel is a
    highlight when its luma exceeds ``highlight_level``.
    """

    mean_luma: tuple[float, float] = (0.2, 0.3)
    highlights: tuple[float, float] = (0.01, 0.06)
    highlight_level: float = 0.9

    def __post_init__(self) -> None:
        for name in ("mean_luma", "highlights"):
            low, high = getattr(self, name)
            if not 0.0 <= low < high <= 1.0:
                raise ValueError(f"gate {name} must rise within [0, 1] (start < full), got {(low, high)}")
        if not 0.0 < self.highlight_level < 1.0:
            raise ValueError(f"gate highlight_level must be in (0, 1), got {self.highlight_level}")

    def __call__(self, small: Tensor) -> Tensor:
        """Weights of shape N (float32): 1 enhances fully, 0 leaves the image as it is."""
        brightness = luma(small.float())[:, 0]
        mean = brightness.mean((1, 2))
        highlights = (brightness > self.highlight_level).float().mean((1, 2))
        exposed = _ramp(mean, *self.mean_luma) * _ramp(highlights, *self.highlights)
        return 1.0 - exposed

"""ISSR low-light synthesis: turn a normal-light image into a plausible dark, noisy capture.

One implementation for the demo, the trainer and the evaluator. Parameters are drawn once per
image (or once per clip, with fresh noise per frame) from a seeded generator, so the same seed
gives the same darkening.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "DAY_LIGHT",
    "NIGHT_LIGHT",
    "DarkenParams",
    "sample_darken_params",
    "darken",
    "darken_sequence",
    "parse_light",
]

# Beta-gamma camera response f(E) = exp(b (1 - E^a)); its inverse linearises pixel values.
_CRF_A = -0.3293
_CRF_B = 1.1258
_EPS = 1e-6
# the light scale L is drawn uniformly from this range: the ISSR recipe's own (dusk to dim
# indoor), and a night range (deep night, streetlights) with everything else unchanged — the
# signal noise σ_s = 0.016 U / L grows as L falls
DAY_LIGHT = (0.5, 1.1)
NIGHT_LIGHT = (0.08, 0.25)


def parse_light(text: str) -> tuple[float, float]:
    """``LOW:HIGH`` (or ``night``/``dusk``) → a light-scale range, or a ValueError saying why."""
    presets = {"night": NIGHT_LIGHT, "dusk": DAY_LIGHT}
    if text in presets:
        return presets[text]
    try:
        low, high = (float(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"--light wants LOW:HIGH such as 0.08:0.25, or night / dusk, got {text!r}") from None
    if not 0.0 < low <= high <= 2.0:
        raise ValueError(f"--light needs 0 < LOW <= HIGH <= 2, got {low:g}:{high:g}")
    return low, high


@dataclass(frozen=True, slots=True)
class DarkenParams:
    """One draw of the ISSR recipe (after its light-level adjustments)."""

    gamma: float
    light: float
    exposure: float
    gains: tuple[float, float, float]
    sigma_signal: float
    sigma_constant: float


def _uniform(generator: torch.Generator) -> float:
    return float(torch.rand((), generator=generator, dtype=torch.float64))


def sample_darken_params(generator: torch.Generator, *, light: tuple[float, float] = DAY_LIGHT) -> DarkenParams:
    """Draw ISSR parameters: γ, light scale (uniform in ``light``), exposure, channel gains and
    noise levels; the same draws in the same order whatever the range."""
    u = lambda: _uniform(generator)  # noqa: E731 - draw order is part of the recipe
    gamma = 1.1 + 0.2 * u()
    low, high = light
    light = low + (high - low) * u()
    exposure = 0.5 + 0.5 * u()
    gains = (0.9 + 0.15 * u(), 0.9 + 0.2 * u(), 0.9 + 0.2 * u())
    sigma_signal = 0.016 * u() / light
    sigma_constant = 0.008 * u()
    if light > 0.85 and u() < 0.85:
        light *= 0.8
        sigma_signal /= 0.8
    if light > 0.9:
        sigma_constant = 0.0
        sigma_signal *= 0.1
    return DarkenParams(gamma, light, exposure, gains, sigma_signal, sigma_constant)


def darken(
    image: Tensor,
    params: DarkenParams,
    *,
    generator: torch.Generator | None = None,
    quantize: bool = True,
) -> Tensor:
    """Apply ``params`` to an N×3×H×W (or 3×H×W) RGB tensor in [0, 1]; same shape and dtype.

    Noise is drawn from ``generator`` (on the image's device), so a clip darkened with one
    ``params`` and one generator gets constant exposure and fresh noise on every frame.
    """
    if image.shape[-3] != 3:
        raise ValueError(f"darken expects RGB with channels at dim -3, got shape {tuple(image.shape)}")
    x = image.to(torch.float32).clamp(_EPS, 1.0)
    raw = (1.0 - torch.log(x) / _CRF_B).pow(1.0 / _CRF_A)
    gains = torch.tensor(params.gains, dtype=raw.dtype, device=raw.device).view(3, 1, 1)
    raw = raw * params.exposure * gains
    std = (params.sigma_signal**2 + params.sigma_constant**2) ** 0.5
    if std > 0:
        noise = torch.randn(raw.shape, generator=generator, dtype=raw.dtype, device=raw.device)
        raw = raw + std * noise
    raw = raw.clamp(_EPS, 1.0) / params.exposure * params.light
    out = raw.clamp(0.0, 1.0).pow(1.0 / params.gamma)
    if quantize:
        out = torch.round(out * 255.0) / 255.0
    return out.to(image.dtype)


def darken_sequence(images: Iterable[Tensor], *, seed: int, light: tuple[float, float] = DAY_LIGHT) -> Iterator[Tensor]:
    """Darken images one by one with one generator seeded ``seed``: fresh parameters each.

    This defines the Dark-* evaluation sets (e.g. Dark-CamVid-val is CamVid val, sorted by
    name, through ``darken_sequence(..., seed=0)``; Night-CamVid-val the same with
    ``light=NIGHT_LIGHT``).
    """
    generator = torch.Generator().manual_seed(seed)
    for image in images:
        yield darken(image, sample_darken_params(generator, light=light), generator=generator)

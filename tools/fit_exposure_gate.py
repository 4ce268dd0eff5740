"""Fit the exposure gate (``sagc.models.gate``) on training images only: its logistic model and
its exposure target, and with ``--cue FILE`` its content cue (``sagc.models.cue``).

    python tools/fit_exposure_gate.py --camvid-train $DATA/camvid/train/images --sice $DATA/sice \
        --cue sagc/weights/content_cue.pt

Normal light: the CamVid train originals, the SICE images brighter than 0.4 mean luma, and
contrast-reduced copies of those (flat, overcast daylight: mean luma 0.28–0.6, contrast 0.4–0.9
of the original). Under-exposed: the CamVid train frames darkened with the ISSR recipe (seed 1)
at dusk and at night level, and the SICE images darker than 0.2. Prints the coefficients to
put in ``ExposureGate`` and how each set falls on the decision, and the noise evidence
(:func:`fit_noise`: the CamVid train originals against the same frames darkened at both
levels, given the log-odds of the gate just fitted). The content cue is trained on
the thumbnails of the same normal sets and of more under-exposed ones (the CamVid frames darkened
with seeds 1–4 at dusk and 1–2 at night, and the SICE images darker than 0.2;
:func:`cue_sets`), and written as a checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from sagc.core.synth import DAY_LIGHT, NIGHT_LIGHT, darken_sequence
from sagc.models.checkpoint import save_checkpoint
from sagc.models.cue import CUE_KIND, ContentCue
from sagc.models.gate import FEATURES, TARGET_FEATURES, ExposureGate, exposure_features, target_features
from sagc.ops.colour import luma
from sagc.ops.denoise import noise_level
from sagc.ops.downscale import downscale
from sagc.stream.media.images import list_images
from sagc.train.cue import thumbnails, train_content_cue
from sagc.train.data import load_rgb

log = logging.getLogger("fit_exposure_gate")

SCALE = 8  # the default weights' estimation scale: the gate sees frames at 1/8 size
RIDGE = 1e-3


def features(images: list[Tensor]) -> Tensor:
    rows = [exposure_features(downscale(x[None], scale=SCALE))[0] for x in images]
    return torch.stack(rows).double()


def flattened(images: list[Tensor], *, seed: int) -> list[Tensor]:
    """Contrast-reduced copies at a normal level: ``level + c · (x − mean)``."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for x in images:
        mean = float(luma(x).mean())
        contrast = 0.4 + 0.5 * float(torch.rand((), generator=generator))
        level = min(0.6, max(0.28, mean * (0.8 + 0.5 * float(torch.rand((), generator=generator)))))
        out.append((level + contrast * (x - mean)).clamp(0.0, 1.0))
    return out


def middle_sice(levels: dict[int, float], images: list[Tensor]) -> list[Tensor]:
    """Every other SICE image between 0.3 and 0.7 mean luma (``levels`` by ``id``)."""
    return [x for x in images if 0.3 < levels[id(x)] < 0.7][::2]


def exposure_pairs(clean: list[Tensor], *, seed: int = 1) -> tuple[Tensor, Tensor]:
    """For each image darkened at dusk and at night level (one ISSR draw each, seeded): the
    target features (:data:`~sagc.models.gate.TARGET_FEATURES`) of the darkened frame's
    thumbnail, N×k, and the log₂ mean luma of the clean one (float64)."""
    features, levels = [], []
    for light in (DAY_LIGHT, NIGHT_LIGHT):
        for image, dark in zip(clean, darken_sequence(clean, seed=seed, light=light), strict=True):
            features.append(target_features(downscale(dark[None], scale=SCALE))[0])
            levels.append(torch.log2(luma(image).mean()))
    return torch.stack(features).double(), torch.stack(levels).double()


def fit_exposure(features: Tensor, levels: Tensor) -> tuple[tuple[float, ...], float]:
    """The coefficients of ``levels`` on the N×k ``features`` and the offset (the gate's
    ``exposure``) by least squares, and the root mean square error in stops."""
    design = torch.cat([features, torch.ones_like(levels)[:, None]], dim=1)
    solution = torch.linalg.lstsq(design, levels[:, None]).solution[:, 0]
    error = float((design @ solution - levels).square().mean().sqrt())
    return tuple(float(v) for v in solution), error


CUE_DUSK_SEEDS = (1, 2, 3, 4)
CUE_NIGHT_SEEDS = (1, 2)


def cue_sets(
    camvid: list[Tensor], bright: list[Tensor], dim: list[Tensor], middle: list[Tensor]
) -> tuple[list[Tensor], list[Tensor]]:
    """The content cue's normal and under-exposed thumbnails: the CamVid frames, the thumbnails
    of the SICE images brighter than 0.4 (``bright``) and the flattened copies of CamVid and
    ``middle``, against the CamVid frames darkened at dusk and night level and the thumbnails
    of the SICE images darker than 0.2 (``dim``)."""
    normal = thumbnails(camvid) + bright + thumbnails(flattened(camvid + middle, seed=3))
    dark = [
        t
        for light, seeds in ((DAY_LIGHT, CUE_DUSK_SEEDS), (NIGHT_LIGHT, CUE_NIGHT_SEEDS))
        for seed in seeds
        for t in thumbnails(darken_sequence(camvid, seed=seed, light=light))
    ]
    return normal, dark + dim


def noise_ratios(images: Iterable[Tensor]) -> Tensor:
    """log of each image's noise level (:func:`~sagc.ops.denoise.noise_level` at full
    resolution) over its thumbnail's mean luma, as the gate measures it
    (:meth:`~sagc.models.gate.ExposureGate.noise_evidence`)."""
    gate = dataclasses.replace(ExposureGate(), noise=(1.0, 0.0))  # log-odds = log ratio
    rows = [gate.noise_evidence(downscale(x[None], scale=SCALE), noise_level(x[None])) for x in images]
    return torch.cat(rows).double()


def fit_noise(clean: list[Tensor], *, gate: ExposureGate | None = None, seed: int = 1) -> tuple[float, float]:
    """The gate's noise evidence (slope, offset of the log-odds in the log ratio), fitted on
    ``clean`` normal frames against the same frames darkened at dusk and at night level.

    With ``gate`` the fit is conditional on what the evidence is added to: each frame's log-odds
    from the gate's probability on its thumbnail is a fixed offset, so the line says what the
    noise adds to the frame's brightness statistics, which the noise ratio shares (fitted alone,
    the line counts that part twice and weighs the rest too little). The content cue's logit is
    left out of the offset: on the frames it was trained on it is surer than on new footage."""
    dark = [*darken_sequence(clean, seed=seed, light=DAY_LIGHT), *darken_sequence(clean, seed=seed, light=NIGHT_LIGHT)]
    offset = None if gate is None else torch.cat([gate_logits(clean, gate), gate_logits(dark, gate)])
    with torch.enable_grad():
        weights, bias = fit(noise_ratios(clean)[:, None], noise_ratios(dark)[:, None], offset=offset)
    return float(weights[0]), bias


def gate_logits(images: Iterable[Tensor], gate: ExposureGate) -> Tensor:
    """Each image's log-odds of being under-exposed from ``gate``'s probability on its thumbnail
    (float64, shape N)."""
    p = torch.cat([gate.probability(downscale(x[None], scale=SCALE)) for x in images]).double()
    return torch.logit(p, eps=1e-6)


def save_cue(cue: ContentCue, path: str, *, provenance: dict[str, object]) -> None:
    save_checkpoint(path, kind=CUE_KIND, arch={"width": cue.width}, state_dict=cue.state_dict(), provenance=provenance)


def fit(normal: Tensor, dark: Tensor, *, offset: Tensor | None = None) -> tuple[np.ndarray, float]:
    """Logistic regression of ``dark`` (1) against ``normal`` (0) rows, ridge on the weights;
    ``offset``: fixed log-odds per row (normal rows first) the fitted line is added to."""
    x = torch.cat([normal, dark])
    fixed = torch.zeros(len(x), dtype=torch.float64) if offset is None else offset.double()
    y = torch.cat([torch.zeros(len(normal)), torch.ones(len(dark))]).double()
    weights = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights, bias], max_iter=1000)

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(fixed + x @ weights + bias, y) + RIDGE * weights.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weights.detach().numpy(), float(bias.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--camvid-train", required=True)
    parser.add_argument("--sice", required=True)
    parser.add_argument("--cue", metavar="FILE", help="also train the content cue and write it here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_grad_enabled(False)
    camvid = [load_rgb(p) for p in tqdm(list_images(args.camvid_train), desc="CamVid train")]
    sice = [load_rgb(p) for p in tqdm(list_images(args.sice), desc="SICE")]
    level = {id(x): float(luma(x).mean()) for x in sice}
    sets = {
        "CamVid train": camvid,
        "SICE > 0.4": [x for x in sice if level[id(x)] > 0.4],
        "flattened": flattened(camvid + middle_sice(level, sice), seed=3),
        "CamVid train, dusk": list(darken_sequence(camvid, seed=1, light=DAY_LIGHT)),
        "CamVid train, night": list(darken_sequence(camvid, seed=1, light=NIGHT_LIGHT)),
        "SICE < 0.2": [x for x in sice if level[id(x)] < 0.2],
    }
    table = {name: features(images) for name, images in tqdm(sets.items(), desc="features")}
    names = list(table)
    with torch.enable_grad():
        weights, bias = fit(torch.cat([table[n] for n in names[:3]]), torch.cat([table[n] for n in names[3:]]))
    log.info("coefficients (%s): (%s)", ", ".join(FEATURES), ", ".join(f"{w:.4f}" for w in weights))
    log.info("bias: %.4f", bias)
    exposure, error = fit_exposure(*exposure_pairs(camvid + middle_sice(level, sice)))
    log.info(
        "exposure (%s, offset): (%s); error %.3f stops",
        ", ".join(TARGET_FEATURES),
        ", ".join(f"{v:.4f}" for v in exposure),
        error,
    )
    for name in names:
        p = torch.sigmoid(table[name] @ torch.from_numpy(weights) + bias).numpy()
        log.info(
            "%-22s %4d images: p 5/50/95 %% = %.2f / %.2f / %.2f; left alone (p < 0.5) %.1f %%",
            name,
            len(p),
            *np.percentile(p, [5, 50, 95]),
            100 * float((p < 0.5).mean()),
        )

    if args.cue:
        bright = thumbnails(x for x in sice if level[id(x)] > 0.4)
        dim = thumbnails(x for x in sice if level[id(x)] < 0.2)
        cue = train_content_cue(*cue_sets(camvid, bright, dim, middle_sice(level, sice)))
        save_cue(cue, args.cue, provenance={"data": "CamVid train, SICE", "tool": "tools/fit_exposure_gate.py"})
        log.info("wrote %s", args.cue)
    gate = dataclasses.replace(
        ExposureGate(), coefficients=tuple(float(w) for w in weights), bias=bias, exposure=exposure
    )
    noise = fit_noise(camvid, gate=gate)
    even = math.exp(-noise[1] / noise[0])
    log.info(
        "noise evidence given the gate (slope, offset): (%.4f, %.4f); zero at noise / mean luma %.4f",
        *noise,
        even,
    )


if __name__ == "__main__":
    main()

"""Training the exposure decision's content cue (:class:`~sagc.models.cue.ContentCue`) on
thumbnails labelled normal or under-exposed (``tools/fit_exposure_gate.py`` builds the sets)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from sagc.models.cue import ContentCue
from sagc.ops.downscale import downscale

__all__ = ["CUE_SCALE", "CUE_STEPS", "thumbnails", "train_content_cue"]

log = logging.getLogger(__name__)

CUE_SCALE = 8  # the default weights' estimation scale: the cue sees what the gate sees
CUE_STEPS = 1500  # training steps of the packaged cue


def thumbnails(images: Iterable[Tensor], *, scale: int = CUE_SCALE) -> list[Tensor]:
    """3×h×w thumbnails (area averages at 1/``scale``) of 3×H×W images in [0, 1]."""
    return [downscale(x[None].float(), scale=scale)[0] for x in images]


def _crops(images: Sequence[Tensor], count: int, size: int, generator: torch.Generator) -> Tensor:
    """``count`` random ``size``² crops of random ``images``, half of them mirrored."""
    out = []
    for _ in range(count):
        x = images[int(torch.randint(len(images), (), generator=generator))]
        side = min(size, x.shape[1], x.shape[2])
        top = int(torch.randint(x.shape[1] - side + 1, (), generator=generator))
        left = int(torch.randint(x.shape[2] - side + 1, (), generator=generator))
        crop = x[:, top : top + side, left : left + side]
        if float(torch.rand((), generator=generator)) < 0.5:
            crop = crop.flip(2)
        out.append(F.interpolate(crop[None], size=(size, size), mode="bilinear")[0] if side != size else crop)
    return torch.stack(out)


def train_content_cue(
    normal: Sequence[Tensor],
    dark: Sequence[Tensor],
    *,
    steps: int = CUE_STEPS,
    batch: int = 32,
    crop: int = 40,
    seed: int = 0,
) -> ContentCue:
    """A :class:`ContentCue` trained to call the ``dark`` thumbnails under-exposed and the
    ``normal`` ones not (logistic loss; each step ``batch`` random crops of each class, AdamW);
    deterministic on the CPU for one ``seed``. In eval mode."""
    if not normal or not dark:
        raise ValueError("the content cue needs normal and under-exposed thumbnails")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    cue = ContentCue()
    optimizer = torch.optim.AdamW(cue.parameters(), lr=3e-3, weight_decay=1e-3)
    labels = torch.cat([torch.zeros(batch), torch.ones(batch)])
    with torch.enable_grad():
        cue.train()
        for _ in range(steps):
            x = torch.cat([_crops(normal, batch, crop, generator), _crops(dark, batch, crop, generator)])
            loss = F.binary_cross_entropy_with_logits(cue(x), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    log.info(
        "content cue: final loss %.4f over %d normal and %d under-exposed thumbnails",
        float(loss.detach()),
        len(normal),
        len(dark),
    )
    return cue.eval()

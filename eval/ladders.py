"""Exposure ladders: real under-exposed captures scored against a normal exposure of their scene.

A multi-exposure set such as SICE photographs every scene at several exposure times with one
camera. Its darkest exposures are real under-exposed captures (the sensor's own noise, the
camera's own tone curve), and a normal exposure of the same scene is in the set too: a paired
test on real captures, where synthetic darkening (:mod:`sagc.core.synth`) is a model of them.

:func:`scenes` recovers the scenes of a folder that holds them one after another as numbered
files (SICE's flattened release). Exposure changes a pixel's value but, away from clipping, not
its order among the picture's pixels, so the rank-transformed thumbnails of two exposures of one
scene correlate near 1; a new scene breaks that (below :data:`SCENE_CORRELATION`).
:func:`ladder_pairs` pairs each scene's darkest exposure within a dark range with its exposure
nearest a normal mean luma, :data:`NORMAL_LUMA` (an auto-exposure's aim: middle grey, 18 %
reflectance, encodes near 0.46 in sRGB).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sagc.ops.colour import LUMA_WEIGHTS
from sagc.stream.media.images import read_image

__all__ = ["DARK_RANGE", "NORMAL_LUMA", "NORMAL_RANGE", "SCENE_CORRELATION", "Exposure", "ladder_pairs", "scenes"]

SCENE_CORRELATION = 0.5  # rank correlation of consecutive thumbnails below which a new scene starts
DARK_RANGE = (0.02, 0.12)  # mean luma of the exposures scored as dark captures
NORMAL_RANGE = (0.3, 0.6)  # mean luma of the exposures a reference is chosen from
NORMAL_LUMA = 0.45
_SIDE = 24  # thumbnail side for the scene test
_MIN_EXPOSURES = 4  # a scene needs this many exposures to count as a ladder


@dataclass(frozen=True, slots=True)
class Exposure:
    """One image of a ladder: its path and mean Rec.709 luma in [0, 1]."""

    path: Path
    luma: float


def _natural(path: Path) -> tuple[object, ...]:
    """Sort key that orders ``2.jpg`` before ``10.jpg``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name))


def _measure(path: Path) -> tuple[Exposure, np.ndarray]:
    """The image's :class:`Exposure` and its standardised rank-transformed luma thumbnail."""
    frame = read_image(path)
    rgb = frame.rgb.astype(np.float32) / frame.max_value
    luma = cv2.transform(rgb, np.array([LUMA_WEIGHTS], np.float32))
    small = cv2.resize(luma, (_SIDE, _SIDE), interpolation=cv2.INTER_AREA).ravel()
    ranks = small.argsort(kind="stable").argsort(kind="stable").astype(np.float64)
    return Exposure(path, float(luma.mean())), (ranks - ranks.mean()) / max(float(ranks.std()), 1e-12)


def scenes(
    paths: Sequence[str | os.PathLike[str]],
    *,
    threshold: float = SCENE_CORRELATION,
    on_image: Callable[[], object] | None = None,
) -> list[list[Exposure]]:
    """``paths`` in natural name order, split into scenes where the rank correlation of two
    consecutive thumbnails falls below ``threshold``; ``on_image`` is called after each image
    is read (progress)."""
    groups: list[list[Exposure]] = []
    previous: np.ndarray | None = None
    for path in sorted((Path(p) for p in paths), key=_natural):
        exposure, signature = _measure(path)
        if on_image is not None:
            on_image()
        if previous is None or float(signature @ previous) / signature.size < threshold:
            groups.append([])
        groups[-1].append(exposure)
        previous = signature
    return groups


def ladder_pairs(
    groups: Sequence[Sequence[Exposure]],
    *,
    dark: tuple[float, float] = DARK_RANGE,
    normal: tuple[float, float] = NORMAL_RANGE,
    aim: float = NORMAL_LUMA,
) -> list[tuple[Exposure, Exposure]]:
    """(dark capture, reference) per scene of at least four exposures that has both: the
    darkest exposure with mean luma in ``dark`` and the one nearest ``aim`` in ``normal``."""
    pairs = []
    for group in groups:
        if len(group) < _MIN_EXPOSURES:
            continue
        darks = [e for e in group if dark[0] <= e.luma <= dark[1]]
        normals = [e for e in group if normal[0] <= e.luma <= normal[1]]
        if darks and normals:
            pairs.append((min(darks, key=lambda e: e.luma), min(normals, key=lambda e: abs(e.luma - aim))))
    return pairs

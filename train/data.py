"""Training data: CamVid segmentation pairs and unpaired normal/low-light image sets.

Every random choice comes from a generator seeded by ``(seed, epoch, index)``, so a sample is
the same whichever worker makes it and a resumed run sees exactly the data it would have seen.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from sagc.core.errors import SagcError
from sagc.core.synth import DAY_LIGHT, NIGHT_LIGHT, darken, sample_darken_params
from sagc.ops.colour import luma
from sagc.stream.media.images import list_images, read_image, require_images

__all__ = [
    "VOID",
    "CAMVID_CLASSES",
    "CamVidSegmentation",
    "UnpairedImages",
    "SyntheticLowLight",
    "mean_luminance",
    "load_rgb",
    "sample_generator",
    "shrink_short_side",
]

log = logging.getLogger(__name__)

CAMVID_CLASSES = (
    "sky",
    "building",
    "pole",
    "road",
    "pavement",
    "tree",
    "sign",
    "fence",
    "car",
    "pedestrian",
    "bicyclist",
)
VOID = 11


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The generator for one sample: independent of worker count and iteration order."""
    mixed = np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(mixed) & 0x7FFF_FFFF_FFFF_FFFF)


def load_rgb(path: str | os.PathLike[str]) -> Tensor:
    """3×H×W float tensor in [0, 1] from an image file."""
    frame = read_image(path)
    return torch.from_numpy(frame.rgb.astype(np.float32) / frame.max_value).permute(2, 0, 1)


def mean_luminance(image: Tensor) -> float:
    """Mean Rec.709 luma of a 3×H×W image in [0, 1]."""
    return float(luma(image).mean())


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def _scale_crop(
    image: Tensor, label: Tensor | None, g: torch.Generator, crop: tuple[int, int], scales: tuple[float, float]
) -> tuple[Tensor, Tensor | None]:
    """Random rescale, pad (label padded with void) and crop to ``crop`` = (h, w), random flip."""
    scale = _uniform(g, *scales)
    h, w = image.shape[-2:]
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    if label is not None:
        label = F.interpolate(label[None, None].float(), size=size, mode="nearest")[0, 0].long()
    ch, cw = crop
    pad_h, pad_w = max(0, ch - size[0]), max(0, cw - size[1])
    if pad_h or pad_w:
        image = F.pad(image, (0, pad_w, 0, pad_h))
        if label is not None:
            label = F.pad(label, (0, pad_w, 0, pad_h), value=VOID)
    top = int(torch.randint(0, image.shape[-2] - ch + 1, (), generator=g))
    left = int(torch.randint(0, image.shape[-1] - cw + 1, (), generator=g))
    image = image[:, top : top + ch, left : left + cw]
    if label is not None:
        label = label[top : top + ch, left : left + cw]
    if float(torch.rand((), generator=g)) < 0.5:
        image = image.flip(-1)
        label = label.flip(-1) if label is not None else None
    return image.contiguous(), None if label is None else label.contiguous()


@dataclass(frozen=True, slots=True)
class Photometric:
    """Brightness/contrast/gamma jitter, and ISSR darkening with some probability."""

    brightness: float = 0.4
    contrast: float = 0.3
    gamma: tuple[float, float] = (0.6, 2.0)
    darken_prob: float = 0.3

    def __call__(self, image: Tensor, g: torch.Generator) -> Tensor:
        if float(torch.rand((), generator=g)) < self.darken_prob:
            return darken(image, sample_darken_params(g), generator=g)
        image = image.clamp(0, 1) ** _uniform(g, *self.gamma)
        image = image * _uniform(g, 1 - self.brightness, 1 + self.brightness)
        mean = image.mean()
        image = (image - mean) * _uniform(g, 1 - self.contrast, 1 + self.contrast) + mean
        return image.clamp(0, 1)


def _pairs(root: Path) -> list[tuple[Path, Path]]:
    images, labels = root / "images", root / "labels"
    if not images.is_dir() or not labels.is_dir():
        raise SagcError(f"{root} must contain images/ and labels/ (CamVid layout)")
    pairs = []
    for image in list_images(images):
        label = labels / f"{image.stem}.png"
        if not label.is_file():
            raise SagcError(f"no label {label.name} for {image} in {labels}")
        pairs.append((image, label))
    if not pairs:
        raise SagcError(f"no images in {images}")
    return pairs


class CamVidSegmentation(Dataset):
    """CamVid split ``root/{images,labels}``, held in memory; augmented when ``train``."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        train: bool,
        crop: tuple[int, int] = (256, 320),
        scales: tuple[float, float] = (0.6, 1.4),
        photometric: Photometric | None = Photometric(),
        seed: int = 0,
    ) -> None:
        self.pairs = _pairs(Path(root))
        self.images = [load_rgb(p) for p, _ in self.pairs]
        self.labels = [torch.from_numpy(read_image(q).rgb[:, :, 0].astype(np.int64)) for _, q in self.pairs]
        self.train, self.crop, self.scales = train, crop, scales
        self.photometric, self.seed, self.epoch = photometric, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image, label = self.images[index], self.labels[index]
        if not self.train:
            return image, label
        g = sample_generator(self.seed, self.epoch, index)
        image, label = _scale_crop(image, label, g, self.crop, self.scales)
        if self.photometric is not None:
            image = self.photometric(image, g)
        return image, label


def _collect(folders: Sequence[str | os.PathLike[str]]) -> list[Path]:
    return [path for folder in folders for path in require_images(folder)]


class UnpairedImages(Dataset):
    """Random crops from image folders (normal-light or real low-light), held in memory.

    With ``max_luminance`` only images darker than that are kept: SICE's under-exposed third
    is picked out this way; ``min_luminance`` keeps only brighter ones (with both: a band, such
    as SICE's well-exposed images for normal-light references).
    """

    def __init__(
        self,
        folders: Sequence[str | os.PathLike[str]],
        *,
        crop: int = 256,
        max_luminance: float | None = None,
        min_luminance: float | None = None,
        resize_to: int | None = None,
        seed: int = 0,
    ) -> None:
        self.crop, self.seed, self.epoch, self.resize_to = crop, seed, 0, resize_to
        self.images: list[Tensor] = []
        for path in _collect(folders):
            image = load_rgb(path)
            level = mean_luminance(image) if max_luminance is not None or min_luminance is not None else 0.0
            if (max_luminance is not None and level > max_luminance) or (
                min_luminance is not None and level < min_luminance
            ):
                continue
            self.images.append(self._prepare(image))
        if not self.images:
            raise SagcError(f"no usable images in {', '.join(map(str, folders))}")
        log.info("loaded %d images from %s", len(self.images), ", ".join(map(str, folders)))

    def _prepare(self, image: Tensor) -> Tensor:
        """How a loaded image is kept in memory: resized to ``resize_to`` on the short side."""
        return shrink_short_side(image, self.resize_to)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.images)

    def _crop(self, image: Tensor, index: int) -> Tensor:
        g = sample_generator(self.seed, self.epoch, index)
        return _scale_crop(image, None, g, (self.crop, self.crop), (1.0, 1.0))[0]

    def __getitem__(self, index: int) -> Tensor:
        return self._crop(self.images[index], index)


def shrink_short_side(image: Tensor, size: int | None) -> Tensor:
    """Resize a C×H×W image (antialiased) so its short side is ``size``; never enlarges."""
    if size is None or min(image.shape[-2:]) <= size:
        return image
    factor = size / min(image.shape[-2:])
    shape = (round(image.shape[-2] * factor), round(image.shape[-1] * factor))
    return F.interpolate(image[None], size=shape, mode="bilinear", antialias=True)[0]


class SyntheticLowLight(UnpairedImages):
    """Normal-light crops darkened on the fly with the ISSR recipe (fresh draw per sample).

    The picture is darkened at its stored resolution and only then resized to ``resize_to``,
    as a camera would: sensor noise is per sensor pixel, and a resized copy carries the
    averaged noise that a downscaled real frame does. (Darkening the already-shrunk picture
    gave training images several times noisier at the estimation scale than the frames seen
    at run time, and the estimator learnt to read noise as "dark".)
    """

    def __init__(
        self,
        folders: Sequence[str | os.PathLike[str]],
        *,
        crop: int = 256,
        resize_to: int | None = None,
        seed: int = 0,
        night_fraction: float = 0.0,
        twins: bool = False,
    ) -> None:
        """``night_fraction``: the share of darkenings at night level instead of dusk. ``twins``:
        each sample is a 2×3×H×W pair, the same crop of one picture darkened by two independent
        draws (the light-invariance term compares what the enhancer makes of them)."""
        if not 0.0 <= night_fraction <= 1.0:
            raise SagcError(f"night_fraction must be in [0, 1], got {night_fraction}")
        super().__init__(folders, crop=crop, resize_to=resize_to, seed=seed)
        self.night_fraction, self.twins = night_fraction, twins

    def _prepare(self, image: Tensor) -> Tensor:
        return image  # kept at full size: shrunk after darkening, in __getitem__

    def _darkened(self, index: int, stream: int) -> Tensor:
        g = sample_generator(self.seed + 1 + 2 * stream, self.epoch, index)
        night = self.night_fraction > 0 and float(torch.rand((), generator=g)) < self.night_fraction
        params = sample_darken_params(g, light=NIGHT_LIGHT if night else DAY_LIGHT)
        dark = darken(self.images[index], params, generator=g)
        return self._crop(shrink_short_side(dark, self.resize_to), index)

    def __getitem__(self, index: int) -> Tensor:
        if self.twins:
            return torch.stack([self._darkened(index, 0), self._darkened(index, 1)])
        return self._darkened(index, 0)

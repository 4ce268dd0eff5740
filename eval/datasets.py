"""What the evaluator reads: paired folders, unpaired folders, video streams; and the tool that
makes paired data from normal-light images or clips with the ISSR recipe (``sagc.core.synth``).

Paired folder: ``ROOT/low`` and ``ROOT/high`` holding images with matching stems (extension
may differ). Video frames stream one at a time; nothing holds a whole clip.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sagc.core.errors import SagcError
from sagc.core.outputs import check_outputs
from sagc.core.synth import DAY_LIGHT, darken, sample_darken_params
from sagc.stream.media.frame import Frame, pixels_to_tensor, tensor_to_pixels
from sagc.stream.media.images import is_image_path, list_images, read_image, require_images, write_image
from sagc.stream.media.sinks import EncoderSettings
from sagc.stream.media.sources import VideoSource, is_lavfi, is_url
from sagc.stream.run.jobs import Job
from sagc.stream.run.transcode import JobResult, run_video_job

__all__ = [
    "ImagePair",
    "paired_folder",
    "image_folder",
    "ClipDarkener",
    "video_frames",
    "darken_folder",
    "darken_video",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ImagePair:
    """One evaluation item: the input image and, for paired data, its reference."""

    name: str
    low: Path
    high: Path | None = None


def _by_stem(folder: Path) -> dict[str, Path]:
    """Images of ``folder`` by stem; two files of one stem (``a.png`` beside ``a.jpg``) are an error,
    since either could be the one meant."""
    return _by_stem_of(list_images(folder), folder)


def _by_stem_of(paths: list[Path], folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in paths:
        if path.stem in found:
            raise SagcError(
                f"{folder} holds both {found[path.stem].name} and {path.name}: items are named (and "
                f"paired) by stem, so {path.stem!r} is ambiguous; keep one of them"
            )
        found[path.stem] = path
    return found


def _subfolder(root: Path, name: str) -> Path:
    for candidate in (name, name.capitalize(), name.upper()):
        if (root / candidate).is_dir():
            return root / candidate
    raise SagcError(f"{root} has no {name}/ folder: a paired set needs {root}/low and {root}/high")


def paired_folder(root: str | os.PathLike[str]) -> list[ImagePair]:
    """Pairs ``ROOT/low/<stem>.*`` ↔ ``ROOT/high/<stem>.*``, sorted by stem."""
    root = Path(root)
    if not root.is_dir():
        raise SagcError(f"paired dataset {root} is not a directory")
    low, high = _by_stem(_subfolder(root, "low")), _by_stem(_subfolder(root, "high"))
    stems = sorted(low.keys() & high.keys())
    if not stems:
        raise SagcError(f"no matching stems between {root}/low ({len(low)} images) and {root}/high ({len(high)})")
    unmatched = len(low.keys() ^ high.keys())
    if unmatched:
        log.warning("%s: %d images without a partner skipped", root, unmatched)
    return [ImagePair(stem, low[stem], high[stem]) for stem in stems]


def image_folder(root: str | os.PathLike[str]) -> list[ImagePair]:
    """Every image in ``root`` (no reference), sorted by name; two of one stem are an error
    (the report names its rows by stem)."""
    paths = require_images(root)
    _by_stem_of(paths, Path(root))
    return [ImagePair(path.stem, path) for path in paths]


class ClipDarkener:
    """One ISSR draw per clip (constant exposure, gains, tone) and fresh noise on every frame."""

    def __init__(self, seed: int, *, light: tuple[float, float] = DAY_LIGHT) -> None:
        self.generator = torch.Generator().manual_seed(seed)
        self.params = sample_darken_params(self.generator, light=light)

    def __call__(self, frame: Frame) -> Frame:
        dark = darken(pixels_to_tensor(frame.rgb), self.params, generator=self.generator)
        return frame.with_pixels(tensor_to_pixels(dark, dtype=frame.rgb.dtype))


def video_frames(
    spec: str,
    *,
    darken_seed: int | None = None,
    max_frames: int | None = None,
    light: tuple[float, float] = DAY_LIGHT,
) -> Iterator[tuple[Frame, Frame | None]]:
    """Stream ``(input, reference)`` frames of a clip (at most ``max_frames``); with
    ``darken_seed`` the input is the darkened frame and the reference the original, else the
    reference is ``None``."""
    darkener = ClipDarkener(darken_seed, light=light) if darken_seed is not None else None
    with VideoSource(spec) as source:
        for item in source:
            if not isinstance(item, Frame):
                continue
            if max_frames is not None and item.index >= max_frames:
                break
            if darkener is None:
                yield item, None
            else:
                yield darkener(item), item
        if source.decoded == 0:
            raise SagcError(f"{spec} has no video frames")


def darken_folder(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, seed: int, overwrite: bool = False,
                  progress=None, light: tuple[float, float] = DAY_LIGHT) -> int:  # fmt: skip
    """Write ``DST/low`` (darkened, 8-bit PNG) and ``DST/high`` (the originals, PNG) for every
    image in ``src`` sorted by name, drawing parameters in that order from one seeded generator
    (so CamVid val with seed 0 gives Dark-CamVid-val). Returns the number of pairs."""
    src, dst = Path(src), Path(dst)
    paths = require_images(src)
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise SagcError(f"choose a destination outside the source folder {src}")
    low, high = dst / "low", dst / "high"
    targets = [folder / f"{path.stem}.png" for folder in (low, high) for path in paths]
    check_outputs(targets, paths, overwrite=overwrite)
    generator = torch.Generator().manual_seed(seed)
    for path in paths:
        frame = read_image(path)
        dark = darken(pixels_to_tensor(frame.rgb), sample_darken_params(generator, light=light), generator=generator)
        write_image(low / f"{path.stem}.png", Frame(tensor_to_pixels(dark, dtype=np.uint8)), overwrite=overwrite)
        write_image(high / f"{path.stem}.png", Frame(frame.rgb, channels=3), overwrite=overwrite)
        if progress is not None:
            progress(path)
    return len(paths)


def darken_video(src: str, dst: str | os.PathLike[str], *, seed: int, settings: EncoderSettings = EncoderSettings(),
                 overwrite: bool = False, stop=None, on_frame=None,
                 light: tuple[float, float] = DAY_LIGHT) -> JobResult:  # fmt: skip
    """Darken a clip (one ISSR draw, fresh noise per frame) into ``dst``; audio is copied.

    Written under a unique ``.partial`` name and moved into place when complete (an interrupted
    run returns ``interrupted=True`` with the playable partial file).
    """
    dst = Path(dst)
    local = not (is_url(src) or is_lavfi(src))
    if local and not Path(src).is_file():
        raise SagcError(f"input not found: {src}")
    if is_image_path(dst) or dst.is_dir():
        raise SagcError(f"{dst}: for a video source give a video file name as the destination, e.g. dark.mp4")
    check_outputs([dst], [src] if local else [], overwrite=overwrite)
    job = Job("video", src, dst)
    return run_video_job(
        job, ClipDarkener(seed, light=light), settings=settings, stop=stop, on_frame=on_frame, overwrite=overwrite
    )

"""The leave-one-sequence-out folds of CamVid and the recipe trained on each (``tools/holdout.py``).

    python tools/holdout_folds.py --camvid $DATA/camvid --config configs/sagc_default.yaml \
        --out runs/holdout [--set device=cuda]

CamVid's frames (``train/images`` and ``val/images`` together) are grouped by sequence, the
file-name prefix before ``_``; for each sequence the recipe is trained on the other sequences
alone into ``OUT/without_SEQUENCE`` (a folder of links to its frames, checkpoints, and
``final.pt``, the last step: no validation set, since CamVid val repeats a training sequence).
An interrupted fold resumes from its ``last.pt``; a finished one is not trained again.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from sagc.core.config import load_config
from sagc.stream.media.images import list_images
from sagc.train.config import EnhancerConfig, EnhancerData
from sagc.train.enhancer import train_enhancer

log = logging.getLogger("holdout")


def sequences(camvid: Path) -> dict[str, list[Path]]:
    """CamVid's frames (train and val) by sequence: the file-name prefix before ``_``."""
    found: dict[str, list[Path]] = {}
    for split in ("train", "val"):
        folder = camvid / split / "images"
        if folder.is_dir():
            for path in list_images(folder):
                found.setdefault(Path(path).name.split("_")[0], []).append(Path(path))
    return {name: sorted(paths) for name, paths in sorted(found.items())}


def linked(paths: Sequence[Path], folder: Path) -> Path:
    """``folder`` holding links to ``paths`` (the trainer reads folders)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        link = folder / path.name
        if not link.exists():
            link.symlink_to(path.resolve())
    return folder


def training_frames(held_out: str, frames: dict[str, list[Path]]) -> list[Path]:
    return [path for name, paths in frames.items() if name != held_out for path in paths]


def train_fold(
    held_out: str,
    frames: dict[str, list[Path]],
    config: EnhancerConfig,
    out: Path,
    *,
    normal: Sequence[Path] = (),
) -> Path:
    """``final.pt`` of the recipe trained on every sequence but ``held_out``; ``normal`` adds
    folders of normal-light references (e.g. SICE, kept to the config's ``normal_luminance``
    band), never darkened into training inputs."""
    fold = out / f"without_{held_out}"
    final = fold / "final.pt"
    if not final.exists():
        images = linked(training_frames(held_out, frames), fold / "images")
        data = EnhancerData(normal=[str(images), *map(str, normal)], synthetic_low=[str(images)])
        log.info("training without %s: %d frames", held_out, len(list(images.iterdir())))
        train_enhancer(config, data, out=fold, resume=(fold / "last.pt").exists())
    return final


def fold_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say which folds to train and how: ``--camvid``, ``--config``, ``--set``,
    ``--out``, ``--normal`` (shared with ``tools/holdout.py``)."""
    parser.add_argument("--camvid", required=True, type=Path, help="a folder with train/images and val/images")
    parser.add_argument("--config", default="configs/sagc_default.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--out", type=Path, default=Path("runs/holdout"))
    parser.add_argument(
        "--normal", nargs="*", type=Path, default=[], help="more normal-light folders for every fold (e.g. SICE)"
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    fold_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    frames = sequences(args.camvid)
    config = load_config(EnhancerConfig, args.config, args.set)
    return {held_out: train_fold(held_out, frames, config, args.out, normal=args.normal) for held_out in frames}


if __name__ == "__main__":
    main()

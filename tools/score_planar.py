"""Score the 4:2:0 path against the RGB paths on the same 4:2:0 input.

    python tools/score_planar.py default --camvid-val $DATA/camvid/val/images \
        --clips $DATA/video/seattlestreet1.mp4

Every dark input is first stored as 8-bit 4:2:0 (BT.601, limited range: what a video decoder
hands over), then enhanced three ways and stored as 4:2:0 again, as ``sagc enhance`` writes video
(conversions between RGB and 4:2:0 with swscale's accurate rounding, so they add no bias):

- ``float``: the reference path (``ReferenceStage``, RGB in floating point);
- ``rgb``: the 8-bit fast path on RGB (the frame converted to RGB and back);
- ``planar``: the 8-bit fast path on the planes (:class:`sagc.ops.gamma.PlanarGammaMap`).

Prints one Markdown row per set: PSNR / SSIM of each against the clean original. Images
(Dark-CamVid-val and Night-CamVid-val: CamVid val darkened with seed 0 at dusk and night level)
are enhanced as stills; clips (darkened with seed 0, the first ``--frames`` frames) as video.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sagc.core.synth import DAY_LIGHT, NIGHT_LIGHT, darken_sequence
from sagc.eval.datasets import video_frames
from sagc.eval.metrics import psnr, ssim
from sagc.models import load_enhancer
from sagc.stream.enhance.stage import Stage
from sagc.stream.media.frame import Frame, frame_to_tensor, tensor_to_pixels
from sagc.stream.media.images import list_images
from sagc.train.data import load_rgb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from holdout import Route  # noqa: E402 - a sibling script: the forms a frame is enhanced in

log = logging.getLogger("score_planar")
PATHS = ("float", "rgb", "planar")


def make_stages(weights: str, *, video: bool) -> dict[str, Stage]:
    return {name: Route(name, yuv420=True).stage(load_enhancer(weights), temporal=video) for name in PATHS}


def score(stages: dict[str, Stage], pairs: Iterable[tuple[np.ndarray, np.ndarray]], what: str) -> str:
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in PATHS}
    for stage in stages.values():
        stage.reset()
    for dark, clean in tqdm(pairs, desc=what, leave=False):
        reference = frame_to_tensor(Frame(clean))
        for name, stage in stages.items():
            y = frame_to_tensor(Route(name, yuv420=True).frame(stage, Frame(dark)))
            scores[name].append((float(psnr(y, reference)), float(ssim(y, reference))))
    cells = [f"{np.mean([p for p, _ in s]):.3f} / {np.mean([q for _, q in s]):.4f}" for s in scores.values()]
    count = len(scores["planar"])
    return f"| {what} | {count} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", nargs="?", default="default")
    parser.add_argument("--camvid-val", help="folder of CamVid val images")
    parser.add_argument("--clips", nargs="*", default=[], help="daylight clips to darken (dusk and night)")
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    log.info("| set | images | float PSNR / SSIM | rgb | planar |")
    log.info("|---|---|---|---|---|")
    if args.camvid_val:
        clean = [load_rgb(p) for p in list_images(args.camvid_val)]
        stills = make_stages(args.weights, video=False)
        for light, name in ((DAY_LIGHT, "Dark-CamVid-val"), (NIGHT_LIGHT, "Night-CamVid-val")):
            dark = darken_sequence(clean, seed=0, light=light)
            pairs = (
                (tensor_to_pixels(d[None], dtype=np.uint8), tensor_to_pixels(c[None], dtype=np.uint8))
                for d, c in zip(dark, clean, strict=True)
            )
            log.info(score(stills, pairs, name))
    video = make_stages(args.weights, video=True)
    for path in args.clips:
        for light, level in ((DAY_LIGHT, "dusk"), (NIGHT_LIGHT, "night")):
            frames = video_frames(path, darken_seed=0, max_frames=args.frames, light=light)
            pairs = ((dark.rgb, clean.rgb) for dark, clean in frames)
            log.info(score(video, pairs, f"{path.rsplit('/', 1)[-1]} at {level}"))


if __name__ == "__main__":
    main()

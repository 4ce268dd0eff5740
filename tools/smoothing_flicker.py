"""Flicker and PSNR of per-frame vs. smoothed enhancement on a darkened day clip.

    python tools/smoothing_flicker.py ../shared/data/video/seattlestreet1.mp4 --frames 300 --smooth 0.8

The clip is darkened with one ISSR draw for the whole clip and fresh noise per frame (seed 0),
enhanced frame by frame with and without ``--smooth``, and scored: flicker
(``sagc.eval.metrics.flicker`` of mean luma vs. the dark input) and mean PSNR vs. the original.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from sagc.eval.metrics import flicker, luma, psnr
from sagc.models import load_enhancer
from sagc.stream.frame import Frame
from sagc.stream.sources import VideoSource
from sagc.stream.stage import FrameEnhancer
from sagc.synth import darken, sample_darken_params


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--smooth", type=float, default=0.8)
    parser.add_argument("--weights", default="default")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(args.seed)
    params = sample_darken_params(g)
    stages = {
        "per-frame": FrameEnhancer(load_enhancer(args.weights)),
        f"smooth {args.smooth}": FrameEnhancer(load_enhancer(args.weights), smooth=args.smooth),
    }
    means: dict[str, list[float]] = {name: [] for name in [*stages, "input"]}
    scores: dict[str, list[float]] = {name: [] for name in stages}
    with VideoSource(args.video) as source:
        frames = (item for item in source if isinstance(item, Frame))
        for _, frame in zip(range(args.frames), frames, strict=False):
            clean = _tensor(frame.rgb)
            dark = darken(clean, params, generator=g)
            dark_rgb = (dark[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
            means["input"].append(float(luma(dark).mean()))
            for name, stage in stages.items():
                out = _tensor(stage(Frame(dark_rgb)).rgb)
                means[name].append(float(luma(out).mean()))
                scores[name].append(float(psnr(out, clean)))
    reference = torch.tensor(means["input"])
    print(f"{len(means['input'])} frames of {args.video}, ISSR seed {args.seed}")
    print("| enhancement | flicker | PSNR dB |")
    print("|---|---|---|")
    for name in stages:
        value = flicker(torch.tensor(means[name]), reference)
        print(f"| {name} | {value:.3f} | {np.mean(scores[name]):.2f} |")


if __name__ == "__main__":
    main()

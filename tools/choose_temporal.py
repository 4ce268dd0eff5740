"""Choose the temporal noise reduction's strength on training images made into moving clips.

    python tools/choose_temporal.py $DATA/camvid/train/images --weights default \
        --strengths 0 0.6 0.7 0.8 0.9 --speeds 1 4

Each of ``--images-count`` frames (evenly spaced through the folder, sorted by name) becomes a pan: a
``--window`` square crop moved ``speed`` pixels to the right per frame for ``--frames`` frames,
darkened as a clip (one ``sagc data darken`` draw per pan, fresh noise per frame, seed
``--seed``) at the default light range and at night. Every pan is enhanced as ``sagc enhance``
runs a video (the CPU stage with its temporal state) once per strength, and scored against its
clean frames: PSNR, SSIM, relative flicker (the frame-to-frame change of the output's log mean
luma over the input's), 1st-percentile luma beside the clean frames'. The output is then encoded
as ``sagc enhance`` encodes it (libx264, preset veryfast, its default CRF; one encoder thread,
so the time is the encoder's own work): the encoder's CPU time per frame and the bytes per
frame, the cost that the noise left in the output adds to every encode. Prints one Markdown
table; ``--json`` writes the figures too.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import av
import numpy as np
import torch
from tqdm import tqdm

from sagc.core.synth import DAY_LIGHT, NIGHT_LIGHT, darken, sample_darken_params
from sagc.eval.metrics import psnr, ssim
from sagc.eval.temporal import TemporalMeter
from sagc.models import load_enhancer
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.media.frame import tensor_to_pixels
from sagc.stream.media.images import list_images
from sagc.train.data import load_rgb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from holdout import enhance, p1_levels, relative_flicker  # noqa: E402 - a sibling script

LIGHTS = {"default light": DAY_LIGHT, "night": NIGHT_LIGHT}
FIGURES = ("psnr", "ssim", "relative_flicker", "p1", "clean_p1", "x264_ms", "x264_kb")


def pan(image: torch.Tensor, *, window: int, speed: int, frames: int) -> Iterator[torch.Tensor]:
    """``frames`` window×window crops of a 3×H×W image, moved ``speed`` pixels right per frame
    (vertically centred)."""
    height, width = image.shape[-2:]
    if window > height or window + speed * (frames - 1) > width:
        raise ValueError(f"a {window}-pixel pan of {frames} frames at {speed} px/frame does not fit {width}×{height}")
    top = (height - window) // 2
    for index in range(frames):
        left = index * speed
        yield image[:, top : top + window, left : left + window]


def encode_cost(frames: Sequence[np.ndarray]) -> tuple[float, float]:
    """(encoder CPU milliseconds per frame, kilobytes per frame) of H×W×3 uint8 frames through
    libx264 veryfast at its default CRF, one thread, into memory."""
    height, width = frames[0].shape[:2]
    with av.open(io.BytesIO(), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30, options={"preset": "veryfast", "threads": "1"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        packets: list[av.Packet] = []
        start = time.process_time()
        for rgb in frames:
            packets += stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p"))
        packets += stream.encode(None)
        spent = time.process_time() - start
    return 1000.0 * spent / len(frames), sum(p.size for p in packets) / 1024.0 / len(frames)


def score_pan(stage: CpuStage, dark: list[torch.Tensor], clean: list[torch.Tensor]) -> dict[str, float]:
    stage.reset()
    meter, rows = TemporalMeter(warping=False), {name: [] for name in ("psnr", "ssim", "p1", "clean_p1")}
    outputs = []
    for low, ref in zip(dark, clean, strict=True):
        y, ref = enhance(stage, low), ref[None]
        pixels = tensor_to_pixels(y, dtype=np.uint8)
        outputs.append(pixels)
        meter.update(tensor_to_pixels(low[None], dtype=np.uint8), pixels)
        rows["psnr"].append(float(psnr(y, ref)))
        rows["ssim"].append(float(ssim(y, ref)))
        rows["p1"].append(p1_levels(y))
        rows["clean_p1"].append(p1_levels(ref))
    x264_ms, x264_kb = encode_cost(outputs)
    return {name: float(np.mean(values)) for name, values in rows.items()} | {
        "relative_flicker": relative_flicker(meter.output_luma, meter.input_luma),
        "x264_ms": x264_ms,
        "x264_kb": x264_kb,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", type=Path, help="a folder of training images")
    parser.add_argument("--weights", default="default", help="checkpoint path or installed name")
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.6, 0.8])
    parser.add_argument("--speeds", type=int, nargs="+", default=[1, 4], help="pan speeds, pixels per frame")
    parser.add_argument("--images-count", dest="count", type=int, default=12, help="pans per light and speed")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--window", type=int, default=320, help="the pan's square crop, pixels (even)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    paths = list_images(args.images)
    if not paths:
        parser.error(f"no images in {args.images}")
    chosen = [paths[round(i * (len(paths) - 1) / max(args.count - 1, 1))] for i in range(min(args.count, len(paths)))]
    stages = {s: CpuStage(load_enhancer(args.weights, temporal_denoise=s)) for s in args.strengths}
    figures: dict[str, dict[str, float]] = {}
    rows = []
    for light_name, light in LIGHTS.items():
        for speed in args.speeds:
            generator = torch.Generator().manual_seed(args.seed)
            sums: dict[float, dict[str, list[float]]] = {s: {f: [] for f in FIGURES} for s in args.strengths}
            for path in tqdm(chosen, desc=f"{light_name}, {speed} px/frame", leave=False):
                crops = pan(load_rgb(path), window=args.window, speed=speed, frames=args.frames)
                clean = [c.contiguous() for c in crops]
                params = sample_darken_params(generator, light=light)
                dark = [darken(c, params, generator=generator) for c in clean]
                for strength, stage in stages.items():
                    for name, value in score_pan(stage, dark, clean).items():
                        sums[strength][name].append(value)
            for strength in args.strengths:
                key = f"{light_name}, {speed} px/frame, temporal {strength:g}"
                figures[key] = {name: float(np.mean(values)) for name, values in sums[strength].items()}
                f = figures[key]
                rows.append(
                    f"| {light_name} | {speed} | {strength:g} | {f['psnr']:.2f} | {f['ssim']:.4f} | "
                    f"{f['relative_flicker']:.3f} | {f['p1']:.1f} ({f['clean_p1']:.1f}) | "
                    f"{f['x264_ms']:.2f} | {f['x264_kb']:.1f} |"
                )
    header = (
        "| light | pan px/frame | temporal | PSNR | SSIM | relative flicker | p1 luma (clean) | "
        "x264 ms/frame | x264 kB/frame |\n|---|---|---|---|---|---|---|---|---|"
    )
    print("\n".join([header, *rows]))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()

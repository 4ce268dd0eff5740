"""Score an enhancer on the exposure goals: daylight kept, night lifted, nothing overdone.

    python tools/score_exposure.py default --camvid-val $DATA/camvid/val/images --sice $DATA/sice \
        --clips $DATA/video/seattlestreet1.mp4 $DATA/video/countryroad.mp4

Every image and frame goes through the CPU stage as ``sagc enhance`` runs it (8-bit fast path).
Prints one Markdown row per measure:

- each clip's frames against themselves (PSNR of the enhanced frame vs. the decoded input: a
  well-lit clip should come back unchanged), mean and worst;
- CamVid val originals against themselves, mean and worst;
- Dark-CamVid-val and Night-CamVid-val (CamVid val darkened with seed 0 at dusk and at night
  level): PSNR, SSIM, and the output's mean luma against the references';
- SICE's over-exposed images (mean luma > 0.6) against themselves, mean and worst;
- with ``--fade CLIP``: the clip darkened with one ISSR draw whose light scale falls
  log-linearly from 1 to night level (0.08) and back over ``--fade-frames`` frames, fresh noise
  on every frame, enhanced as a video (the exposure decision smoothed over time) and frame by
  frame: PSNR against the clean clip, flicker of the output's mean luma (the evaluator's: its
  frame-to-frame change over the input's) and warping error (motion from the clean clip).

An unchanged image counts 100 dB.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
from collections.abc import Iterable, Iterator

import av
import numpy as np
import torch
from tqdm import tqdm

from sagc.core.synth import DAY_LIGHT, NIGHT_LIGHT, darken, darken_sequence, sample_darken_params
from sagc.eval.metrics import psnr, ssim
from sagc.eval.temporal import MotionFlow, TemporalMeter
from sagc.models import load_enhancer
from sagc.ops.colour import luma
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.media.frame import Frame, frame_to_tensor, tensor_to_pixels
from sagc.stream.media.images import list_images
from sagc.train.data import load_rgb

log = logging.getLogger("score_exposure")
CAP = 100.0


def to_frame(x: torch.Tensor) -> Frame:
    """A 3×H×W float image in [0, 1] as an 8-bit frame."""
    return Frame(tensor_to_pixels(x[None], dtype=np.uint8))


def clip_frames(path: str) -> Iterator[Frame]:
    with av.open(path) as container:
        for frame in container.decode(video=0):
            yield Frame(frame.to_ndarray(format="rgb24"))


def against_themselves(stage: CpuStage, frames: Iterable[Frame], what: str) -> str:
    scores = []
    for frame in tqdm(frames, desc=what, leave=False):
        x = frame_to_tensor(frame)
        scores.append(min(CAP, float(psnr(frame_to_tensor(stage(frame)), x))))
    return f"| {what} vs. itself | {len(scores)} | {np.mean(scores):.2f} | worst {min(scores):.2f} |"


def paired(stage: CpuStage, dark: list[torch.Tensor], clean: list[torch.Tensor], what: str) -> str:
    p, s, out_luma = [], [], []
    for low, ref in tqdm(zip(dark, clean, strict=True), total=len(dark), desc=what, leave=False):
        y = frame_to_tensor(stage(to_frame(low)))
        p.append(float(psnr(y, ref[None])))
        s.append(float(ssim(y, ref[None])))
        out_luma.append(float(luma(y).mean()))
    ref_luma = float(np.mean([float(luma(r).mean()) for r in clean]))
    return (
        f"| {what} | {len(p)} | {np.mean(p):.2f} / {np.mean(s):.4f} | "
        f"luma {np.mean(out_luma):.3f} vs. {ref_luma:.3f} ({100 * (np.mean(out_luma) / ref_luma - 1):+.1f} %) |"
    )


def faded(path: str, frames: int) -> Iterator[tuple[Frame, Frame]]:
    """(darkened, clean) frames: light 1 → 0.08 → 1, log-linear, one draw of the rest."""
    generator = torch.Generator().manual_seed(0)
    base = sample_darken_params(generator, light=(0.5, 0.5))  # below the recipe's bright-light branch
    for index, clean in enumerate(clip_frames(path)):
        if index == frames:
            return
        phase = 1.0 - abs(2.0 * index / max(1, frames - 1) - 1.0)  # 0 → 1 → 0
        light = math.exp(phase * math.log(NIGHT_LIGHT[0]))
        params = dataclasses.replace(base, light=light, sigma_signal=base.sigma_signal * 0.5 / light)
        yield to_frame(darken(frame_to_tensor(clean)[0], params, generator=generator)), clean


def fade(video: CpuStage, stills: CpuStage, path: str, frames: int) -> list[str]:
    rows = []
    for stage in (video, stills):
        stage.reset()
        meter, flow, scores = TemporalMeter(), MotionFlow(), []
        for dark, clean in faded(path, frames):
            out = stage(dark)
            meter.update(dark.rgb, out.rgb, flow.update(clean.rgb))
            scores.append(float(psnr(frame_to_tensor(out), frame_to_tensor(clean))))
        how = "as a video" if stage is video else "frame by frame"
        rows.append(
            f"| fade day → night → day, {how} | {len(scores)} | {np.mean(scores):.2f} | "
            f"flicker {meter.flicker:.3f}, warping error {meter.warping_error:.6f} |"
        )
    return rows


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights")
    parser.add_argument("--camvid-val", required=True)
    parser.add_argument("--sice", required=True)
    parser.add_argument("--clips", nargs="*", default=[])
    parser.add_argument("--fade", help="a daylight clip to fade to night and back")
    parser.add_argument("--fade-frames", type=int, default=300)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stage = CpuStage(load_enhancer(args.weights))  # video: the exposure decision tracked over time
    stills = CpuStage(load_enhancer(args.weights))
    stills.configure(stills.settings, temporal=False)  # unrelated images: each decided on its own
    log.info("| measure | images | PSNR (dB) / SSIM | |")
    log.info("|---|---|---|---|")
    for path in args.clips:
        stage.reset()
        log.info(against_themselves(stage, clip_frames(path), path.rsplit("/", 1)[-1]))
    clean = [load_rgb(p) for p in list_images(args.camvid_val)]
    log.info(against_themselves(stills, (to_frame(x) for x in clean), "CamVid val"))
    log.info(paired(stills, list(darken_sequence(clean, seed=0, light=DAY_LIGHT)), clean, "Dark-CamVid-val"))
    log.info(paired(stills, list(darken_sequence(clean, seed=0, light=NIGHT_LIGHT)), clean, "Night-CamVid-val"))
    bright = (load_rgb(p) for p in list_images(args.sice))
    over = (to_frame(x) for x in bright if float(luma(x).mean()) > 0.6)
    log.info(against_themselves(stills, over, "SICE > 0.6"))
    if args.fade:
        for row in fade(stage, stills, args.fade, args.fade_frames):
            log.info(row)


if __name__ == "__main__":
    main()

"""Score enhancer checkpoints for the default-weights recipe and the ablation table.

    python tools/score_weights.py runs/full/best.pt runs/noadv/best.pt runs/nosem/best.pt \
        --camvid-val $DATA/camvid/val/images --sice $DATA/sice

Prints a Markdown table: Dark-CamVid-val PSNR/SSIM (ISSR seed 0), CamVid-val originals through
the enhancer (PSNR vs. themselves), and mean luma of SICE's under-exposed images before/after.
"""

from __future__ import annotations

import argparse
import time

import torch

from sagc.models import load_enhancer
from sagc.models.settings import SWITCH, switch
from sagc.stream.media.images import list_images
from sagc.train.data import load_rgb, mean_luminance
from sagc.train.validation import dark_camvid, validate


def sice_low(folder: str, threshold: float) -> list[torch.Tensor]:
    images = (load_rgb(p) for p in list_images(folder))
    return [image for image in images if mean_luminance(image) <= threshold]


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", nargs="+")
    parser.add_argument("--camvid-val", required=True)
    parser.add_argument("--sice", required=True)
    parser.add_argument("--threshold", type=float, default=0.25, help="SICE under-exposure: mean luma at most this")
    parser.add_argument("--scale", type=float, help="override the checkpoints' run-time scale")
    parser.add_argument("--denoise", type=float, help="override the checkpoints' run-time noise reduction (0 = off)")
    parser.add_argument("--gate", choices=SWITCH, help="override the checkpoints' exposure gate")
    parser.add_argument("--guide", type=float, help="override the checkpoints' guided upsampling (0 = off)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    dark, clean = dark_camvid(args.camvid_val)
    low = sice_low(args.sice, args.threshold)
    before = sum(mean_luminance(x) for x in low) / len(low)
    print(f"Dark-CamVid-val: {len(dark)} images; SICE under-exposed: {len(low)} images, mean luma {before:.3f}")
    print("| weights | PSNR dB | SSIM | input PSNR | identity PSNR mean / worst | SICE-low luma | s/image |")
    print("|---|---|---|---|---|---|---|")
    for path in args.weights:
        enhancer = load_enhancer(path, scale=args.scale, denoise=args.denoise, gate=switch(args.gate), guide=args.guide)
        started = time.perf_counter()
        scores = validate(enhancer, dark, clean)
        seconds = (time.perf_counter() - started) / (2 * len(dark))
        after = sum(mean_luminance(enhancer(x[None])[0]) for x in low) / len(low)
        print(
            f"| {path} | {scores['psnr']:.2f} | {scores['ssim']:.4f} | {scores['input_psnr']:.2f} | "
            f"{scores['identity_psnr']:.2f} / {scores['identity_min_psnr']:.2f} | {after:.3f} | {seconds:.3f} |"
        )


if __name__ == "__main__":
    main()

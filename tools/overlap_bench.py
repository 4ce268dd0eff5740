"""The CPU stage's estimate on its worker against in step, side by side: transcode and live.

    python tools/overlap_bench.py CLIP [--synthetic 1280x720@30] --frames 300 --runs 3 [--live]

Each run transcodes the first ``--frames`` frames three ways in a row, as ``sagc bench`` times its
end-to-end figure (libx264 ``veryfast``, 4:2:0 from the decoder): a plain pass-through, the
default weights with :attr:`~sagc.stream.enhance.cpu_stage.CpuStage.overlap` off (every
estimate in step with its frame: the stage's default) and on (a frame's estimate on the worker
beside its full-resolution work, as the preview runs it). Prints frames/s and each one's ratio
to the pass-through of its run, and the median ratios. The model runs on one thread, the CLI's
default ``--threads``. With ``--live``, each run measures ``sagc bench``'s live latency instead
(the preview loop on the input paced at its frame rate, ``--frames`` frames, the session's
overlap off and on): p50 and p95 of each, and their medians.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

from sagc.models import load_enhancer
from sagc.stream.apps.bench import _live_latency, _transcode, synthetic_spec
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.media.sinks import EncoderSettings
from sagc.stream.media.sources import Decoding

log = logging.getLogger("overlap_bench")


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", help="a video file")
    parser.add_argument("--synthetic", metavar="WxH@FPS", help="sagc bench's dark test pattern instead of a file")
    parser.add_argument("--weights", default="default")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--live", action="store_true", help="live latency instead of the transcode")
    args = parser.parse_args(argv)
    if (args.input is None) == (args.synthetic is None):
        parser.error("give a video file or --synthetic WxH@FPS")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)  # the CLI's default --threads: decoding and encoding run beside the model
    spec = args.input or synthetic_spec(args.synthetic)
    if args.live:
        return live(spec, args.weights, frames=args.frames, runs=args.runs)
    cpu, settings = torch.device("cpu"), EncoderSettings()
    ratios: dict[str, list[float]] = {"in step": [], "overlap": []}
    with tempfile.TemporaryDirectory(prefix="sagc-overlap-") as tmp:
        for run in range(args.runs):
            plain, _, _ = _transcode(spec, args.frames, lambda f: f, settings, cpu, Path(tmp), Decoding(), planar=True)
            row = [f"run {run + 1}: pass-through {plain:.1f} frames/s"]
            for name, overlap in (("in step", False), ("overlap", True)):
                with CpuStage(load_enhancer(args.weights), overlap=overlap) as stage:
                    fps, _, _ = _transcode(spec, args.frames, stage, settings, cpu, Path(tmp), Decoding(), planar=True)
                ratios[name].append(fps / plain)
                row.append(f"{name} {fps:.1f} ({fps / plain:.3f})")
            log.info(", ".join(row))
    log.info(", ".join(f"{name}: median {statistics.median(values):.3f}" for name, values in ratios.items()))
    return ratios


def live(spec: str, weights: str, *, frames: int, runs: int) -> dict[str, list[float]]:
    """Live latency p50s (ms) with the session's overlap off and on, alternating."""
    p50s: dict[str, list[float]] = {"in step": [], "overlap": []}
    p95s: dict[str, list[float]] = {"in step": [], "overlap": []}
    for run in range(runs):
        row = [f"run {run + 1}:"]
        for name, overlap in (("in step", False), ("overlap", True)):
            with CpuStage(load_enhancer(weights)) as stage:
                latencies, dropped = _live_latency(spec, stage, frames, overlap=overlap)
            p50, p95 = np.percentile(np.array(latencies) * 1000.0, [50, 95])
            p50s[name].append(float(p50))
            p95s[name].append(float(p95))
            row.append(f"{name} p50 / p95 {p50:.1f} / {p95:.1f} ms ({dropped} dropped)")
        log.info(" ".join(row))
    log.info(
        ", ".join(
            f"{name}: median p50 / p95 {statistics.median(p50s[name]):.1f} / {statistics.median(p95s[name]):.1f} ms"
            for name in p50s
        )
    )
    return p50s


if __name__ == "__main__":
    main()

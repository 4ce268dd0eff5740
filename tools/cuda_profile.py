"""Where the CUDA stage's time goes at one frame size (needs a CUDA device).

    python tools/cuda_profile.py --size 1920x1080 --denoise 0 4 --json profile.json

For each noise-reduction strength it measures, with CUDA events (median of ``--runs``, after
warm-up): the host→device and device→host copies of one 8-bit frame from/to pinned memory, the
enhancer's device work for one frame (replayed from the stage's CUDA graph, and run eagerly,
with the host time of the eager launches), the estimator network alone on its low-resolution
input; and, by wall clock, the whole :class:`~sagc.stream.enhance.cuda_stage.CudaStage` ring over
``--frames`` of 8 distinct frames (host copies, uploads, compute and downloads overlapped as in
the pipeline), with graphs and without. Prints a table; ``--json``
writes every figure.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sagc.models import load_enhancer
from sagc.stream.enhance.cuda_stage import CudaStage
from sagc.stream.media.frame import Frame

log = logging.getLogger("cuda_profile")


def device_ms(fn: Callable[[], object], *, runs: int, warmup: int = 5) -> float:
    """Median device time of ``fn`` on the current stream, in milliseconds."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def test_frames(count: int, height: int, width: int) -> list[Frame]:
    """Dark, noisy, moving frames (real work for the noise estimate and the filter)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for index in range(count):
        base = 0.25 + 0.2 * np.sin((x + 7 * index) / 37.0)[..., None] * np.cos(y / 23.0)[..., None]
        noisy = base * np.array([0.9, 0.7, 0.5], np.float32) + rng.normal(0, 0.02, (height, width, 3))
        frames.append(Frame((np.clip(noisy, 0, 1) * 255).astype(np.uint8), index, index=index))
    return frames


def ring_fps(stage: CudaStage, frames: list[Frame], total: int) -> float:
    """Frames/s through ``submit`` with the ring kept full (as the pipeline drives it)."""
    pending: collections.deque = collections.deque()
    for frame in frames[: stage.slots]:  # warm-up
        stage(frame)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for index in range(total):
        pending.append(stage.submit(frames[index % len(frames)]))
        if len(pending) >= stage.slots:
            pending.popleft().result()
    while pending:
        pending.popleft().result()
    return total / (time.perf_counter() - started)


@torch.inference_mode()
def profile(weights: str, height: int, width: int, denoise: float, *, runs: int, frames: int) -> dict[str, float]:
    stage = CudaStage(load_enhancer(weights, denoise=denoise), device="cuda")
    stage.configure(stage.settings, temporal=False)  # frame by frame: the work replays from CUDA graphs
    clip = test_frames(8, height, width)
    stage(clip[0])  # allocates the ring
    slot = stage._ring[0]
    slot.host_in.numpy()[...] = clip[1].rgb
    figures: dict[str, float] = {}
    figures["upload_ms"] = device_ms(lambda: slot.dev_in.copy_(slot.host_in, non_blocking=True), runs=runs)
    figures["download_ms"] = device_ms(lambda: slot.host_out.copy_(slot.dev_out, non_blocking=True), runs=runs)
    figures["compute_graph_ms"] = device_ms(slot.graph.replay, runs=runs)  # captured by stage(...)
    figures["compute_eager_ms"] = device_ms(lambda: stage._enhance_on_device(slot), runs=runs)
    eager_started = time.perf_counter()
    for _ in range(runs):
        stage._enhance_on_device(slot)
    figures["eager_launch_ms"] = 1e3 * (time.perf_counter() - eager_started) / runs  # host side
    torch.cuda.synchronize()
    low_h, low_w = stage.enhancer.low_resolution_size(height, width)
    small = torch.rand(1, 3, low_h, low_w, device="cuda", dtype=stage.dtype).contiguous(
        memory_format=torch.channels_last
    )
    figures["estimator_ms"] = device_ms(lambda: stage.enhancer.estimator(small), runs=runs)
    host_started = time.perf_counter()
    for frame in clip:
        slot.host_in.numpy()[...] = frame.rgb
    figures["host_copy_ms"] = 1e3 * (time.perf_counter() - host_started) / len(clip)
    figures["ring_fps"] = ring_fps(stage, clip, frames)
    eager = CudaStage(load_enhancer(weights, denoise=denoise), device="cuda", graphs=False)
    figures["ring_eager_fps"] = ring_fps(eager, clip, frames)
    return {key: round(value, 4) for key, value in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080", help="WxH of the frames")
    parser.add_argument("--weights", default="default")
    parser.add_argument("--denoise", type=float, nargs="+", default=[0.0, 4.0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--frames", type=int, default=600, help="frames through the ring")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device here; run this on a GPU machine")
    width, height = (int(v) for v in args.size.lower().split("x"))
    results = {
        str(d): profile(args.weights, height, width, d, runs=args.runs, frames=args.frames) for d in args.denoise
    }
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "size": args.size, "results": results}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    keys = list(next(iter(results.values())))
    log.info("%s, torch %s, %s", report["device"], report["torch"], args.size)
    log.info("%-18s" + "%12s" * len(results), "denoise", *results)
    for key in keys:
        log.info("%-18s" + "%12.4g" * len(results), key, *(r[key] for r in results.values()))


if __name__ == "__main__":
    main()

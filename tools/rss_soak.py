"""Memory soak: enhance N frames of a synthetic source end to end and watch the process RSS.

    python tools/rss_soak.py --frames 20000 --size 640x360 --rate 30

Runs the same threaded decode → enhance → encode pipeline as ``sagc enhance`` (default weights,
libx264 veryfast into a temporary file) and prints RSS every ``--every`` frames; the verdict
compares the last sample with the one after warm-up (default: frame 1000). Linux only
(/proc/self/statm).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from sagc.models import load_enhancer
from sagc.stream.apps.bench import synthetic_spec
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.media.frame import Frame
from sagc.stream.media.sinks import EncoderSink
from sagc.stream.media.sources import VideoSource
from sagc.stream.run.threaded import run_pipeline_threaded

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--rate", type=int, default=30)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--smooth", type=float, default=0.0)
    args = parser.parse_args()
    if not 0 <= args.warmup < args.frames:
        parser.error(f"--warmup ({args.warmup}) must be below --frames ({args.frames})")
    spec = synthetic_spec(f"{args.size}@{args.rate}")
    spec = spec.replace("testsrc2=", f"testsrc2=duration={args.frames / args.rate:.3f}:")
    stage = CpuStage(load_enhancer("default", smooth=args.smooth))
    samples: list[tuple[int, float]] = []
    started = time.perf_counter()

    def on_frame(frame: Frame) -> None:
        if frame.index % args.every == 0 or frame.index == args.frames - 1:
            samples.append((frame.index, rss_mb()))
            print(f"frame {frame.index:6d}  RSS {samples[-1][1]:7.1f} MB  "
                  f"{frame.index / (time.perf_counter() - started):6.1f} fps", flush=True)  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp, VideoSource(spec) as source:
        with EncoderSink(Path(tmp) / "soak.mp4", source.info) as sink:
            result = run_pipeline_threaded(source, stage, sink, on_frame=on_frame)
    base = next(mb for index, mb in samples if index >= args.warmup)
    growth = samples[-1][1] - base
    print(f"{result.frames} frames; RSS {base:.1f} MB at frame {args.warmup} -> {samples[-1][1]:.1f} MB at the end: "
          f"growth {growth:+.1f} MB ({'PASS' if growth <= 50 else 'FAIL'}: limit 50 MB)")  # fmt: skip


if __name__ == "__main__":
    main()

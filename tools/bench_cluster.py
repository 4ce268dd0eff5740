"""Benchmark ``sagc enhance --ray`` against a local run on this machine.

    python tools/bench_cluster.py --files 4 12 --seconds 2 --size 640x360

Makes ``max(--files)`` dark demo clips (``sagc.stream.media.demo``), then for each file count N times,
side by side in one run: ``sagc enhance`` of the N clips in one local process, and ``sagc enhance
--ray ADDRESS --workers W`` for W in ``--workers`` on a Ray cluster this script starts on the
machine (one node with ``max(--workers)`` CPU slots). Every command is timed from the outside
(process start to exit: what a user waits for). Prints a Markdown table of wall seconds, files/s
and frames/s, and the Ray path's overhead against the local run, fitted over the file counts as
``seconds = fixed + per_file · N``: the fixed part (joining the cluster, starting the workers)
and the per-file part (scheduling, the manifest) of each.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ray.cluster_utils import Cluster

from sagc.stream.media.demo import make_demo_clip

log = logging.getLogger("bench_cluster")


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return time.perf_counter() - started


def fit(counts: list[int], seconds: list[float]) -> tuple[float, float]:
    """(fixed, per file) of a least-squares line through (count, seconds)."""
    per_file, fixed = np.polyfit(counts, seconds, 1) if len(set(counts)) > 1 else (seconds[0] / counts[0], 0.0)
    return float(fixed), float(per_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, nargs="+", default=[4, 12], help="file counts to run (default 4 12)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts (default 1 2)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each clip (default 2)")
    parser.add_argument("--size", default="640x360", help="clip size WxH (default 640x360)")
    parser.add_argument("--rate", type=int, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    width, height = (int(v) for v in args.size.lower().split("x"))
    frames_per_file = round(args.seconds * args.rate)
    sagc = [sys.executable, "-m", "sagc", "enhance", "-q"]
    with tempfile.TemporaryDirectory(prefix="bench_cluster_") as tmp:
        root = Path(tmp)
        clips = [
            make_demo_clip(
                root / "in" / f"clip{i:03d}.mp4", seconds=args.seconds, size=(width, height), rate=args.rate, seed=i
            )
            for i in range(max(args.files))
        ]
        nodes = Cluster(
            initialize_head=True, head_node_args={"num_cpus": max(args.workers), "include_dashboard": False}
        )
        results: dict[str, list[float]] = {}
        try:
            for n in args.files:
                inputs = [str(c) for c in clips[:n]]
                results.setdefault("local", []).append(timed([*sagc, *inputs, "-o", f"{root}/local{n}/"]))
                for w in args.workers:
                    out = f"{root}/ray{w}_{n}"
                    command = [*sagc, *inputs, "-o", out, "--ray", nodes.address, "--workers", str(w)]
                    results.setdefault(f"ray, {w} worker(s)", []).append(timed(command))
        finally:
            nodes.shutdown()
    log.info(
        "Machine: %s, %s, %d CPUs; clips %dx%d, %d frames each; seconds from process start to exit.\n",
        platform.node(),
        platform.processor() or platform.machine(),
        len(os.sched_getaffinity(0)),
        width,
        height,
        frames_per_file,
    )
    log.info("| run | files | seconds | files/s | frames/s |")
    log.info("|---|---|---|---|---|")
    for name, seconds in results.items():
        for n, s in zip(args.files, seconds, strict=True):
            log.info(f"| {name} | {n} | {s:.1f} | {n / s:.2f} | {n * frames_per_file / s:.1f} |")
    local_fixed, local_per_file = fit(args.files, results["local"])
    log.info("\n| run | fixed seconds | seconds per file | per-file overhead vs. local |")
    log.info("|---|---|---|---|")
    for name, seconds in results.items():
        fixed, per_file = fit(args.files, seconds)
        log.info(f"| {name} | {fixed:.2f} | {per_file:.3f} | {per_file - local_per_file:+.3f} s |")


if __name__ == "__main__":
    main()

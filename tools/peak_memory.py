"""Peak memory of ``sagc enhance`` per full-resolution pixel, measured on clips of several sizes.

Each size gets a short H.264 clip (FFmpeg's testsrc2 through PyAV); ``sagc enhance`` runs on it in
a child process and the child's peak resident set is read from ``wait4``. The bytes per pixel are
the slope between sizes, so the fixed cost of the interpreter, torch and the model drops out::

    python tools/peak_memory.py --sizes 640x360 1920x1080 3840x2160 7680x4320
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import av


def make_clip(path: Path, width: int, height: int, frames: int) -> Path:
    """A ``frames``-frame H.264 clip of the lavfi test pattern at ``width``×``height``."""
    with av.open(f"testsrc2=size={width}x{height}:rate=30", format="lavfi") as source, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index, frame in enumerate(source.decode(video=0)):
            if index == frames:
                break
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    return path


def peak_rss(command: list[str]) -> int:
    """Run ``command``; its peak resident set in bytes (Linux reports ru_maxrss in KiB)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()}")
    return usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["640x360", "1920x1080", "3840x2160", "7680x4320"])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--weights", default="default")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="sagc-memory-") as tmp:
        for size in args.sizes:
            width, height = (int(v) for v in size.split("x"))
            clip = make_clip(Path(tmp) / f"{size}.mp4", width, height, args.frames)
            command = [sys.executable, "-m", "sagc", "enhance", str(clip), "-o", str(Path(tmp) / f"out{size}.mp4")]
            command += ["--weights", args.weights, "-q", "--max-pixels", str(width * height)]
            rows.append((size, width * height, peak_rss(command)))
    print(f"{'size':>10} {'pixels':>12} {'peak RSS MB':>12} {'bytes/pixel vs previous':>24}")
    for i, (size, pixels, peak) in enumerate(rows):
        slope = "" if i == 0 else f"{(peak - rows[i - 1][2]) / (pixels - rows[i - 1][1]):.0f}"
        print(f"{size:>10} {pixels:>12,} {peak / 2**20:>12.0f} {slope:>24}")


if __name__ == "__main__":
    main()

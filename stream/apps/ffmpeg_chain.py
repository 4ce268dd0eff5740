"""The filter chain a user would reach for instead of sagc, timed by the ``ffmpeg`` program.

``sagc bench --compare-ffmpeg`` runs it on the same input, with the same encoder, codec preset
and quality, in the same run as sagc's own figures: a plain ``ffmpeg`` transcode and the same
transcode through :data:`FFMPEG_CHAIN` (spatio-temporal denoise, then a gamma lift with a little
saturation). Their ratio stands beside sagc's enhance / pass-through ratio, so users see the
trade between the two tools on their own machine.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sagc.core.errors import SagcError
from sagc.stream.media.sinks import EncoderSettings, codec_options
from sagc.stream.media.sources import LAVFI_PREFIX, is_lavfi

__all__ = ["FFMPEG_CHAIN", "FfmpegTimes", "ffmpeg_program", "time_ffmpeg"]

FFMPEG_CHAIN = "hqdn3d=4:3:6:4.5,eq=gamma=1.6:saturation=1.15:gamma_weight=0.85"


@dataclass(frozen=True)
class FfmpegTimes:
    """Frames per second of ``ffmpeg`` transcoding the input plainly and through the chain."""

    version: str
    plain_fps: float
    chain_fps: float

    @property
    def ratio(self) -> float:
        """The chain's speed as a share of the plain transcode's."""
        return self.chain_fps / self.plain_fps


def ffmpeg_program() -> str:
    """The ffmpeg program's path, or a clear error where there is none."""
    program = shutil.which("ffmpeg")
    if program is None:
        raise SagcError("--compare-ffmpeg needs the ffmpeg program on PATH (e.g. apt install ffmpeg)")
    return program


def _input_args(spec: str) -> list[str]:
    if is_lavfi(spec):
        return ["-f", "lavfi", "-i", spec[len(LAVFI_PREFIX) :]]
    return ["-i", spec]


def _run(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise SagcError(f"ffmpeg could not transcode the input for the comparison: {last}")
    return seconds


def time_ffmpeg(spec: str, frames: int, settings: EncoderSettings, folder: Path, *, codec: str) -> FfmpegTimes:
    """Time ``ffmpeg`` on the first ``frames`` video frames of ``spec`` (no audio), encoding
    with ``codec`` and ``settings`` as sagc's own encoder does, into files in ``folder``."""
    program = ffmpeg_program()
    version = subprocess.run([program, "-version"], capture_output=True, text=True, check=False).stdout
    options = [arg for key, value in codec_options(codec, settings).items() for arg in (f"-{key}", value)]
    base = [program, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *_input_args(spec)]
    tail = ["-frames:v", str(frames), "-an", "-sn", "-pix_fmt", "yuv420p", "-c:v", codec, *options]
    plain = _run([*base, *tail, str(folder / "ffmpeg-plain.mp4")])
    chain = _run([*base, "-vf", FFMPEG_CHAIN, *tail, str(folder / "ffmpeg-chain.mp4")])
    return FfmpegTimes(
        version=" ".join(version.split()[:3]) or "ffmpeg", plain_fps=frames / plain, chain_fps=frames / chain
    )

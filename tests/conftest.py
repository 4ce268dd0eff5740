"""Shared fixtures: real clips made with PyAV, checkpoints made with our own save code.

The ffmpeg command line, an independent implementation, is the oracle where a test needs
one; those tests are skipped with a visible reason where it is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from sagc.core.atomic import partial_paths
from sagc.models import GammaEstimator, save_enhancer

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
needs_ffmpeg = pytest.mark.skipif(
    FFMPEG is None or FFPROBE is None,
    reason="ffmpeg/ffprobe CLI not installed (apt-get install ffmpeg): oracle checks skipped",
)


def scene(index: int, width: int, height: int) -> np.ndarray:
    """A moving, colourful RGB test picture (uint8) that compresses like real video."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 0.5 + 0.5 * np.sin((x + 3 * index) / 17.0)
    g = 0.5 + 0.5 * np.cos((y - 2 * index) / 13.0)
    b = 0.5 + 0.5 * np.sin((x + y) / 29.0 + index / 7.0)
    rgb = np.stack([r, g, b], axis=-1)
    rgb[height // 4 : height // 2, width // 4 : width // 2] = (0.9, 0.2, 0.1)
    return (rgb * 255).round().astype(np.uint8)


def make_clip(
    path: Path,
    *,
    size: tuple[int, int] = (160, 96),
    frames: int = 24,
    rate: int = 24,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    audio: bool = False,
    subtitles: bool = False,
    rotation: int = 0,
    brightness: float = 1.0,
) -> Path:
    """Encode a real clip with PyAV: ``pts`` in ``time_base`` units makes it VFR."""
    width, height = size
    time_base = time_base or Fraction(1, rate)
    pts = list(pts) if pts is not None else list(range(frames))
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = time_base
        video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=48000) if audio else None
        text = out.add_stream("ass") if subtitles else None  # Matroska only
        for i, stamp in enumerate(pts):
            rgb = (scene(i, width, height) * brightness).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            frame.pts, frame.time_base = stamp, time_base
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            seconds = float(pts[-1] * time_base) + 1 / rate
            samples = int(48000 * seconds)
            t = np.arange(samples, dtype=np.float32) / 48000
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            chunk = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = 48000, 0, Fraction(1, 48000)
            out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
        if text is not None:
            _mux_subtitle(out, text)
    return path


SUBTITLE_EVENT = b"0,0,Default,,0,0,0,,hello"


def _mux_subtitle(out: av.container.OutputContainer, stream: av.stream.Stream) -> None:
    stream.codec_context.time_base = Fraction(1, 1000)
    packet = av.Packet(SUBTITLE_EVENT)
    packet.stream = stream
    packet.time_base = Fraction(1, 1000)
    packet.pts = packet.dts = 0
    packet.duration = 500
    out.mux(packet)


def ffprobe(path: Path, *args: str) -> list[str]:
    """Run ffprobe with CSV output and return its non-empty lines."""
    out = subprocess.run(
        [FFPROBE, "-v", "error", *args, "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


def ffmpeg_rgb(path: Path, width: int, height: int, pix_fmt: str = "rgb24") -> np.ndarray:
    """Decode every frame of ``path`` with the ffmpeg CLI (the oracle) as N×H×W×3."""
    raw = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"],
        check=True,
        capture_output=True,
    ).stdout
    dtype = np.uint16 if pix_fmt.startswith("rgb48") else np.uint8
    return np.frombuffer(raw, dtype=dtype).reshape(-1, height, width, 3)


def one_error(capture: pytest.CaptureFixture[str]) -> str:
    """The single ``sagc: error:`` line a failed in-process run printed (no traceback, no second one)."""
    err = capture.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("sagc: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _estimator(seed: int, *, final_bias: float | None = None) -> GammaEstimator:
    torch.manual_seed(seed)
    estimator = GammaEstimator()
    if final_bias is not None:
        with torch.no_grad():
            estimator.conv7[1].bias.fill_(final_bias)
            estimator.conv7[1].weight.zero_()
    return estimator


@pytest.fixture(scope="session")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of a seeded, untrained estimator (γ around 0.5: it brightens)."""
    path = tmp_path_factory.mktemp("weights") / "random.pt"
    return save_enhancer(path, _estimator(0), scale=2.0, provenance={"made_by": "tests"})


# `sagc export`'s flags for :func:`exported`: every setting a graph holds off its default
EXPORTED_SETTINGS = {"scale": 3.0, "gain": 1.25, "denoise": 2.5, "gate": True, "guide": 0.3, "ev": 0.5, "black": 2.0}


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory, weights: Path) -> tuple[Path, str]:
    """:func:`weights` through `sagc export` with :data:`EXPORTED_SETTINGS`: the ONNX file and
    what the command printed (one export serves every test that reads one)."""
    pytest.importorskip("onnxscript", reason="onnxscript not installed: export tests skipped")
    out = tmp_path_factory.mktemp("export") / "enhancer.onnx"
    flags = []
    for name, value in EXPORTED_SETTINGS.items():
        flag = "--exposure-gate" if name == "gate" else f"--{name}"
        flags += [flag, ("on" if value else "off") if isinstance(value, bool) else f"{value:g}"]
    command = [sys.executable, "-m", "sagc", "export", "-o", str(out), "--weights", str(weights), *flags]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out, result.stdout


@pytest.fixture(scope="session")
def identity_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint whose γ is 1 to float precision: output pixels equal input pixels."""
    path = tmp_path_factory.mktemp("weights") / "identity.pt"
    return save_enhancer(path, _estimator(0, final_bias=40.0), provenance={"made_by": "tests"})


def immerkaer(rgb: np.ndarray) -> float:
    """Immerkær's noise σ written out with numpy slices: the oracle for both implementations."""
    grey = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    c = grey[1:-1, 1:-1]
    response = (
        grey[:-2, :-2] + grey[:-2, 2:] + grey[2:, :-2] + grey[2:, 2:]
        - 2 * (grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:])
        + 4 * c
    )  # fmt: skip
    return float(np.abs(response).mean() * np.sqrt(np.pi / 2) / 6)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """900 dark frames: long enough to interrupt a run part way (the Ray tests)."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    return make_clip(path, size=(320, 192), frames=900, brightness=0.25)


def wait_for_partial(target: Path, timeout: float = 60.0) -> Path:
    """The temporary file of a Ray run's output once it holds more than a header."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in partial_paths(target) if p.stat().st_size > 1000]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no partial output for {target} appeared")

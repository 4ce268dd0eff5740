"""Temporal noise reduction: noise averaged away where the picture stands still, nothing dragged
behind what moves, clean frames untouched, and the same on the 8-bit and the float paths."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from sagc.models import load_enhancer
from sagc.ops.temporal_denoise import TemporalDenoiser
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.enhance.reference import ReferenceStage
from sagc.stream.media.frame import Frame

from .conftest import needs_ffmpeg

SIGMA = 6.0  # 8-bit levels of noise on the test frames


def _background(height: int = 48, width: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return 40 + 20 * np.sin(x / 9.0) * np.cos(y / 7.0)  # smooth, dark, not flat


def _noisy(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noisy = clean[..., None] + rng.normal(0, SIGMA, (*clean.shape, 3))
    return np.clip(noisy, 0, 255).round().astype(np.uint8)


def test_still_noise_falls_as_the_recursion_predicts():
    rng = np.random.default_rng(0)
    clean = _background()
    denoiser = TemporalDenoiser(0.6)
    for _ in range(20):
        out = denoiser.filter_8bit(_noisy(clean, rng), noise=SIGMA)
    residual = float((out.astype(np.float32) - clean[..., None]).std())
    # a still pixel keeps 0.6 of its history: noise × sqrt(0.4 / 1.6) = 0.5 of its level; the
    # motion test lets the noisiest differences through, so somewhat above that
    assert residual < 0.65 * SIGMA


def test_a_moving_square_leaves_no_trail_and_arrives_at_full_brightness():
    rng = np.random.default_rng(1)
    denoiser = TemporalDenoiser(0.8)
    for step in range(12):
        clean = _background()
        clean[10:26, 4 * step : 4 * step + 16] = 200  # moves 4 pixels a frame
        out = denoiser.filter_8bit(_noisy(clean, rng), noise=SIGMA).astype(np.float32)
    square = out[12:24, 4 * 11 + 2 : 4 * 11 + 14]
    assert abs(float(square.mean()) - 200) < 3  # no history blended into the new position
    left = out[12:24, 4 * 10 - 8 : 4 * 10 - 2]  # where it was a few frames ago
    assert abs(float(left.mean()) - float(_background()[12:24, 4 * 10 - 8 : 4 * 10 - 2].mean())) < 3


def test_planes_leave_no_trail_behind_a_moving_square_and_steady_the_still_background():
    """On 4:2:0 planes the motion is measured at chroma resolution (2×2 luma means): an edge
    moving 3 pixels a frame still starts the history over, and the still background is steadied."""
    rng = np.random.default_rng(3)
    denoiser = TemporalDenoiser(0.8)
    chroma = np.full((24, 32), 128, np.uint8)
    for step in range(12):
        clean = _background()
        clean[10:26, 3 * step + 1 : 3 * step + 17] = 200  # odd offsets: edges inside 2×2 blocks
        luma = np.clip(clean + rng.normal(0, SIGMA, clean.shape), 0, 255).round().astype(np.uint8)
        out = denoiser.filter_planes((luma, chroma, chroma), noise=SIGMA, matrix="itu601", color_range=1)
    y = out[0]
    assert abs(float(y[12:24, 3 * 11 + 3 : 3 * 11 + 15].mean()) - 200) < 3  # arrived, no history in it
    where_it_was = y[12:24, 3 * 9 - 6 : 3 * 9]
    assert abs(float(where_it_was.mean()) - float(_background()[12:24, 3 * 9 - 6 : 3 * 9].mean())) < 3
    still = (y[30:46, :] - _background()[30:46, :]).std()
    assert still < 0.7 * SIGMA  # the background below the square kept its history


def test_a_cut_starts_over_and_clean_or_gated_frames_pass_through():
    rng = np.random.default_rng(2)
    denoiser = TemporalDenoiser(0.8)
    for _ in range(5):
        denoiser.filter_8bit(_noisy(_background(), rng), noise=SIGMA)
    other = _noisy(_background() + 120, rng)  # a different shot, far brighter
    assert np.abs(denoiser.filter_8bit(other, noise=SIGMA).astype(int) - other).max() <= 1
    clean = np.full((48, 64, 3), 30, np.uint8)
    assert denoiser.filter_8bit(clean, noise=0.1) is clean  # no work on clean footage
    noisy = _noisy(_background(), rng)
    assert denoiser.filter_8bit(noisy, noise=SIGMA, weight=0.0) is noisy  # the gate left it alone
    with pytest.raises(ValueError, match="strength"):
        TemporalDenoiser(1.0)


def test_the_float_path_filters_like_the_8bit_path():
    rng = np.random.default_rng(3)
    frames = [_noisy(_background(), rng) for _ in range(6)]
    eight, floating = TemporalDenoiser(0.6), TemporalDenoiser(0.6)
    for rgb in frames:
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].double() / 255
        noise = float(floating_noise(x))
        a = eight.filter_8bit(rgb, noise=noise * 255)
        b = floating(x)
    b8 = (b[0].permute(1, 2, 0) * 255).round().numpy()
    assert b.dtype == torch.float64
    assert np.abs(a.astype(float) - b8).mean() < 0.6 and np.abs(a.astype(float) - b8).max() <= 3


def floating_noise(x: torch.Tensor) -> torch.Tensor:
    from sagc.ops.denoise import noise_level

    return noise_level(x)[0]


def test_stage_fast_and_float_paths_agree_and_stills_do_not_carry_history(weights):
    rng = np.random.default_rng(4)
    frames = [Frame(_noisy(_background() * 0.4, rng)) for _ in range(5)]
    outputs = {}
    for fast in (True, False):
        stage = (CpuStage if fast else ReferenceStage)(
            load_enhancer(weights, temporal_denoise=0.6, gate=False, denoise=0.0, scale=4)
        )
        assert stage.temporal_denoiser is not None
        outputs[fast] = [stage(frame).rgb.astype(int) for frame in frames]
    assert np.abs(outputs[True][-1] - outputs[False][-1]).mean() < 1.0
    stills = CpuStage(load_enhancer(weights, temporal_denoise=0.6, gate=False, denoise=0.0, scale=4))
    stills.configure(stills.settings, temporal=False)
    assert stills.temporal_denoiser is None
    alone = CpuStage(load_enhancer(weights, gate=False, denoise=0.0, scale=4))(frames[-1]).rgb
    assert np.array_equal(stills(frames[-1]).rgb, alone)


def _noisy_clip(path: Path, frames: int = 20) -> Path:
    rng = np.random.default_rng(5)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24, options={"crf": "0"})  # lossless: the noise survives
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv444p"
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray(_noisy(_background() * 0.5, rng), format="rgb24")
            out.mux(stream.encode(frame.reformat(format="yuv444p")))
        out.mux(stream.encode())
    return path


def _decoded(path: Path) -> np.ndarray:
    """Frames as ffmpeg (an independent decoder) gives them."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, 48, 64, 3).astype(np.float32)


@needs_ffmpeg
def test_sagc_enhance_steadies_a_noisy_still_clip(tmp_path):
    clip = _noisy_clip(tmp_path / "night.mkv")
    flicker = {}
    for strength in ("0", "0.6"):
        out = tmp_path / f"out{strength}.mkv"
        args = ["enhance", str(clip), "-o", str(out), "--temporal-denoise", strength, "--crf", "0", "-q"]
        subprocess.run([sys.executable, "-m", "sagc", *args], check=True, capture_output=True)
        frames = _decoded(out)[8:]  # after the history has built up
        flicker[strength] = float(np.abs(np.diff(frames, axis=0)).mean())  # frame-to-frame change
    assert flicker["0.6"] < 0.7 * flicker["0"]

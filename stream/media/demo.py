"""The built-in demo clip: a procedural street at dusk darkened with the ISSR recipe, with a tone."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import av
import numpy as np
import torch

from sagc.core.atomic import atomic_write
from sagc.core.synth import darken, sample_darken_params

__all__ = ["make_demo_clip", "street_scene"]

_DUSK = 0.45  # exposure of the scene before the ISSR camera model darkens it further


@functools.lru_cache(maxsize=4)
def _backdrop(width: int, height: int, seed: int) -> np.ndarray:
    """Sky, buildings with lit windows and a road: the static part of the scene."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.float32)
    horizon = int(height * 0.6)
    t = np.linspace(0.0, 1.0, horizon, dtype=np.float32)[:, None, None]
    img[:horizon] = (1 - t) * np.array([0.30, 0.40, 0.70]) + t * np.array([0.85, 0.70, 0.60])
    x = 0
    while x < width:
        w = int(rng.integers(width // 12, width // 6))
        top = int(rng.integers(height // 8, horizon - height // 10))
        img[top:horizon, x : x + w] = rng.uniform(0.25, 0.6, 3)
        for wy in range(top + 6, horizon - 8, 14):
            for wx in range(x + 5, x + w - 8, 12):
                if rng.random() < 0.4:
                    img[wy : wy + 7, wx : wx + 6] = (0.95, 0.85, 0.55)
        x += w + int(rng.integers(2, 10))
    img[horizon:] = (0.38, 0.37, 0.36)
    img[horizon : horizon + 4] = (0.6, 0.6, 0.58)
    return img


def street_scene(index: int, *, size: tuple[int, int], rate: int, seed: int = 0) -> np.ndarray:
    """Frame ``index`` of a street scene (H×W×3 float32 in [0, 1]): lane marks and a car move."""
    width, height = size
    img = _backdrop(width, height, seed).copy()
    road_mid = int(height * 0.8)
    offset = int(index * 240 / rate) % 80
    for x in range(-80 + offset, width, 80):
        img[road_mid - 2 : road_mid + 2, max(0, x) : max(0, x + 40)] = (0.9, 0.9, 0.85)
    car_w, car_h = width // 6, height // 10
    cx = int((index * 180 / rate) % (width + car_w)) - car_w
    top = road_mid - car_h - 6
    xs, xe = max(0, cx), min(width, cx + car_w)
    if xe > xs:
        img[top : road_mid - 6, xs:xe] = (0.75, 0.12, 0.1)
        img[top + 4 : top + car_h // 2, max(xs, cx + 8) : min(xe, cx + car_w - 8)] = (0.5, 0.6, 0.7)
        lamp = min(width, cx + car_w)
        img[road_mid - 20 : road_mid - 12, max(0, lamp - 6) : lamp] = (1.0, 1.0, 0.85)
    return img


def make_demo_clip(
    path: str | os.PathLike[str],
    *,
    seconds: float = 4.0,
    size: tuple[int, int] = (640, 360),
    rate: int = 30,
    seed: int = 0,
) -> Path:
    """Write a dark, noisy H.264 + AAC clip to ``path`` (constant darkening, fresh noise)."""
    path = Path(path)
    width, height = size
    generator = torch.Generator().manual_seed(seed)
    params = sample_darken_params(generator)
    tone = av.open(f"sine=frequency=440:sample_rate=48000:duration={seconds}", format="lavfi")

    def write(tmp: Path) -> None:
        with av.open(str(tmp), mode="w", format="mp4") as out:
            video = out.add_stream("libx264", rate=rate, options={"crf": "18", "preset": "veryfast"})
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            audio = out.add_stream("aac", rate=48000)
            for index in range(round(seconds * rate)):
                scene = street_scene(index, size=size, rate=rate, seed=seed) * _DUSK
                rgb = torch.from_numpy(scene).permute(2, 0, 1)
                dark = darken(rgb, params, generator=generator)
                pixels = (dark * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
                picture = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
                picture.pts = index
                out.mux(video.encode(picture))
            out.mux(video.encode(None))
            for samples in tone.decode(audio=0):
                out.mux(audio.encode(samples))
            out.mux(audio.encode(None))

    try:
        atomic_write(path, write)
    finally:
        tone.close()
    return path

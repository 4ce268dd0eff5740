"""tools/choose_temporal.py on a tiny synthetic set: pans made, darkened, enhanced as video at
each strength, scored and encoded."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sagc.stream.media.demo import street_scene
from sagc.stream.media.frame import Frame
from sagc.stream.media.images import write_image

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    sys.path.insert(0, str(ROOT / "tools"))
    import choose_temporal

    return choose_temporal


def test_a_pan_moves_its_window_across_the_image():
    image = torch.arange(3 * 8 * 12, dtype=torch.float32).view(3, 8, 12)
    crops = list(_tool().pan(image, window=6, speed=2, frames=4))
    assert len(crops) == 4 and all(c.shape == (3, 6, 6) for c in crops)
    assert torch.equal(crops[0], image[:, 1:7, 0:6]) and torch.equal(crops[3], image[:, 1:7, 6:12])
    with pytest.raises(ValueError, match="does not fit"):
        list(_tool().pan(image, window=6, speed=2, frames=5))


def test_the_filter_makes_night_pans_steadier_and_cheaper_to_encode(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(2):
        rgb = (street_scene(index * 7, size=(160, 120), rate=30) * 255).round().astype(np.uint8)
        write_image(folder / f"seq_{index:03d}.png", Frame(rgb))
    argv = [str(folder), "--images-count", "2", "--frames", "8", "--window", "96", "--speeds", "1", "4"]
    argv += ["--strengths", "0", "0.8", "--json", str(tmp_path / "figures.json")]
    figures = _tool().main(argv)
    assert len(figures) == 2 * 2 * 2  # lights × speeds × strengths
    off, on = figures["night, 1 px/frame, temporal 0"], figures["night, 1 px/frame, temporal 0.8"]
    assert on["x264_kb"] < off["x264_kb"]  # the noise the filter removes is not encoded
    assert on["psnr"] > off["psnr"] and on["ssim"] > off["ssim"]
    assert all(np.isfinite(list(f.values())).all() for f in figures.values())
    assert json.loads((tmp_path / "figures.json").read_text()) == figures
    assert capsys.readouterr().out.count("\n") == 2 + 8

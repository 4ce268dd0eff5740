"""Oversized pictures are refused from their headers, before they are decoded."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from sagc.cli import main
from sagc.core.errors import SagcError
from sagc.stream.media.frame import DEFAULT_MAX_PIXELS
from sagc.stream.media.images import read_image
from sagc.stream.media.sources import VideoSource

from .conftest import make_clip, one_error


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory) -> Path:
    """12000×12000 grey PNG: a few hundred KB on disk, 144 million pixels decoded."""
    path = tmp_path_factory.mktemp("limits") / "huge.png"
    cv2.imwrite(str(path), np.zeros((12000, 12000), np.uint8))
    assert path.stat().st_size < 1_000_000
    return path


def test_huge_image_is_refused_without_decoding_it(huge_png):
    probe = textwrap.dedent(
        f"""
        from sagc.core.errors import SagcError
        from sagc.stream.media.images import read_image

        def peak():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        before = peak()
        try:
            read_image({str(huge_png)!r})
        except SagcError as exc:
            print(exc)
        print(peak() - before)
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    message, grown = out.stdout.strip().splitlines()
    assert "12000x12000" in message and "more than the limit" in message and "--max-pixels" not in message
    assert int(grown) < 50_000_000  # decoding it would take 144 MB or more


def test_huge_image_on_the_command_line(tmp_path, huge_png, weights, capsys):
    assert main(["enhance", str(huge_png), "-o", str(tmp_path / "out.png"), "--weights", str(weights), "-q"]) == 1
    assert "more than the limit" in one_error(capsys)
    assert not (tmp_path / "out.png").exists()


def test_max_pixels_moves_the_limit(tmp_path, weights, capsys):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.full((40, 50, 3), 30, np.uint8))
    with pytest.raises(SagcError, match="50x40"):
        read_image(image, max_pixels=1999)
    assert read_image(image, max_pixels=2000).rgb.shape == (40, 50, 3)
    args = ["enhance", str(image), "-o", str(tmp_path / "out.png"), "--weights", str(weights), "-q"]
    assert main([*args, "--max-pixels", "1999"]) == 1
    assert "--max-pixels" in one_error(capsys)
    assert main([*args, "--max-pixels", "2000"]) == 0


def test_oversized_video_is_refused_before_the_first_frame(tmp_path, weights, capsys):
    clip = make_clip(tmp_path / "clip.mp4", size=(160, 96), frames=4)
    with pytest.raises(SagcError, match="160x96"):
        VideoSource(str(clip), max_pixels=160 * 96 - 1)
    with VideoSource(str(clip), max_pixels=160 * 96) as source:
        assert source.info.width == 160
    out = tmp_path / "out.mp4"
    assert main(["enhance", str(clip), "-o", str(out), "--weights", str(weights), "-q", "--max-pixels", "15000"]) == 1
    assert "more than the limit of 15,000" in one_error(capsys)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_default_limit_admits_8k():
    assert DEFAULT_MAX_PIXELS >= 7680 * 4320


def test_the_limit_names_the_flag_only_where_the_command_has_it(tmp_path, huge_png, weights, capsys):
    assert main(["enhance", str(huge_png), "-o", str(tmp_path / "out.png"), "--weights", str(weights), "-q"]) == 1
    assert "pass --max-pixels N" in one_error(capsys)
    assert main(["data", "darken", str(huge_png.parent), str(tmp_path / "dark")]) == 1
    line = one_error(capsys)
    assert "more than the limit" in line and "--max-pixels" not in line

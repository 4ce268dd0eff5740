"""Real-world files: edit-list trims are not losses, damage in the middle is; ffmpeg is the oracle."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from sagc.cli import main

from .conftest import FFMPEG, ffprobe, make_clip, needs_ffmpeg

pytestmark = needs_ffmpeg


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", *args], check=True, capture_output=True)


def ffmpeg_frame_count(path: Path) -> int:
    """Frames the ffmpeg CLI decodes and shows (``ffmpeg -i IN -f null -``)."""
    return int(ffprobe(path, "-count_frames", "-select_streams", "v", "-show_entries", "stream=nb_read_frames")[0])


def first_times(path: Path, stream: str) -> list[float]:
    """Presentation times of the first decoded frames of ``stream`` (``v`` or ``a``), per ffprobe."""
    lines = ffprobe(path, "-select_streams", stream, "-show_entries", "frame=pts_time")
    return [round(float(line.strip(",")), 4) for line in lines[:4]]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A 4 s H.264 + AAC clip with a keyframe every 2 s, made by the ffmpeg CLI."""
    path = tmp_path_factory.mktemp("real") / "src.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=160x96:rate=30:duration=4",
        "-f", "lavfi", "-i", "sine=duration=4", "-c:v", "libx264", "-g", "60", "-c:a", "aac", "-shortest", str(path),
    )  # fmt: skip
    return path


@pytest.mark.parametrize("cut", [("-ss", "1.5"), ("-ss", "1.5", "-t", "1")], ids=["head", "head-and-tail"])
def test_trimmed_mp4_succeeds_with_every_shown_frame(tmp_path, source, weights, capsys, cut):
    trimmed = tmp_path / "cut.mp4"
    ffmpeg(*cut[:2], "-i", str(source), *cut[2:], "-c", "copy", str(trimmed))
    packets = int(ffprobe(trimmed, "-select_streams", "v", "-show_entries", "stream=nb_frames")[0])
    shown = ffmpeg_frame_count(trimmed)
    assert shown < packets  # the edit list hides leading packets: the case under test

    out = tmp_path / "out.mp4"
    assert main(["enhance", str(trimmed), "-o", str(out), "--weights", str(weights), "-q"]) == 0
    assert "lost" not in capsys.readouterr().err
    assert ffmpeg_frame_count(out) == shown

    reference = tmp_path / "copy.mp4"
    ffmpeg("-i", str(trimmed), "-c", "copy", str(reference))
    assert first_times(out, "v") == first_times(reference, "v")
    assert first_times(out, "a") == first_times(reference, "a")


def test_garbage_inside_mpegts_is_reported_as_loss(tmp_path, source, weights, capsys):
    clean = tmp_path / "clean.ts"
    ffmpeg("-i", str(source), "-c", "copy", "-f", "mpegts", str(clean))
    data = bytearray(clean.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8192] = random.Random(0).randbytes(8192)
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(bytes(data))
    shown = ffmpeg_frame_count(damaged)
    assert shown < ffmpeg_frame_count(clean)

    out = tmp_path / "out.mp4"
    assert main(["enhance", str(damaged), "-o", str(out), "--weights", str(weights), "-q"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sagc: error:")]
    assert len(errors) == 1 and "lost" in errors[0], errors
    lost = int(errors[0].split(" lost")[0].rsplit(" ", 1)[1])
    assert lost >= 1
    assert ffmpeg_frame_count(out) == shown  # the readable part, every frame of it


def test_subtitles_that_outlast_the_video_are_not_loss(tmp_path, weights, capsys):
    clip = make_clip(tmp_path / "short.mkv", frames=6, audio=True, subtitles=True)  # a 0.5 s subtitle event
    assert main(["enhance", str(clip), "-o", str(tmp_path / "out.mkv"), "--weights", str(weights), "-q"]) == 0
    assert "lost" not in capsys.readouterr().err
    assert ffmpeg_frame_count(tmp_path / "out.mkv") == 6

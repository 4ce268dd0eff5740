"""Nothing is ever clobbered: inputs, existing files, other outputs of the run, concurrent runs;
a write that fails leaves nothing unplayable behind."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sagc.cli import main
from sagc.core.atomic import atomic_write_bytes, partial_paths, publish, temporary_path
from sagc.core.errors import SagcError

from .conftest import FFMPEG, make_clip, needs_ffmpeg, one_error, scene


def digest(path: Path) -> bytes:
    return path.read_bytes()


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_clip(tmp_path / "clip.mp4", frames=8, audio=True, brightness=0.3)


def test_input_with_a_temporary_looking_name_survives(tmp_path, clip, weights):
    source = clip.rename(tmp_path / "clip.partial.mp4")
    before = digest(source)
    assert main(["enhance", str(source), "-o", str(tmp_path / "clip.mp4"), "--weights", str(weights), "-q"]) == 0
    assert digest(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "clip.partial.mp4"]


def test_compare_output_that_is_the_input_is_refused(tmp_path, clip, weights, capsys):
    source = clip.rename(tmp_path / "night_compare.mp4")
    before = digest(source)
    args = ["enhance", str(source), "-o", str(tmp_path / "night.mp4"), "--compare", "--weights", str(weights), "-q"]
    assert main(args) == 1
    assert "would overwrite the input" in one_error(capsys)
    assert digest(source) == before
    assert not (tmp_path / "night.mp4").exists()


def test_existing_compare_file_is_refused_without_overwrite(tmp_path, clip, weights, capsys):
    side = tmp_path / "x_compare.mp4"
    side.write_bytes(b"precious")
    args = ["enhance", str(clip), "-o", str(tmp_path / "x.mp4"), "--compare", "--weights", str(weights), "-q"]
    assert main(args) == 1
    assert "--overwrite" in one_error(capsys)
    assert side.read_bytes() == b"precious"
    assert main([*args, "--overwrite"]) == 0
    assert side.read_bytes() != b"precious"


def test_image_outputs_that_collide_with_compare_files_are_refused(tmp_path, weights, capsys):
    import cv2

    for name in ("b.jpg", "b_compare.jpg"):
        cv2.imwrite(str(tmp_path / name), scene(0, 32, 24))
    out = tmp_path / "out"
    args = ["enhance", str(tmp_path / "b.jpg"), str(tmp_path / "b_compare.jpg"), "-o", f"{out}/", "--compare"]
    assert main([*args, "--weights", str(weights), "-q"]) == 1
    assert "written twice" in one_error(capsys)
    assert not out.exists() or not any(out.iterdir())


def test_output_that_is_the_input_under_another_name_is_refused_even_with_overwrite(tmp_path, clip, weights, capsys):
    link = tmp_path / "other.mp4"
    os.link(clip, link)
    before = digest(clip)
    assert main(["enhance", str(clip), "-o", str(link), "--overwrite", "--weights", str(weights), "-q"]) == 1
    assert "would overwrite the input" in one_error(capsys)
    assert digest(clip) == before


def test_data_darken_keeps_an_input_with_a_temporary_looking_name(tmp_path, clip, capsys):
    source = clip.rename(tmp_path / "v.partial.mp4")
    before = digest(source)
    assert main(["data", "darken", str(source), str(tmp_path / "v.mp4")]) == 0
    assert digest(source) == before
    assert main(["data", "darken", str(source), str(source), "--overwrite"]) == 1
    assert "would overwrite the input" in one_error(capsys)
    assert digest(source) == before


def test_data_darken_folder_refuses_existing_pairs(tmp_path, capsys):
    import cv2

    src = tmp_path / "src"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), scene(0, 32, 24))
    dst = tmp_path / "dst"
    (dst / "low").mkdir(parents=True)
    (dst / "low" / "a.png").write_bytes(b"precious")
    assert main(["data", "darken", str(src), str(dst)]) == 1
    assert "--overwrite" in one_error(capsys)
    assert (dst / "low" / "a.png").read_bytes() == b"precious"


def test_temporary_names_are_unique_and_exclusive(tmp_path):
    target = tmp_path / "out.mp4"
    names = {temporary_path(target) for _ in range(20)}
    assert len(names) == 20
    assert all(p.exists() and p.suffix == ".mp4" and ".partial" in p.name for p in names)


def test_publish_never_replaces_a_file_that_appeared_meanwhile(tmp_path):
    target = tmp_path / "out.png"
    tmp = temporary_path(target)
    tmp.write_bytes(b"ours")
    target.write_bytes(b"someone else's")
    with pytest.raises(SagcError, match="appeared while"):
        publish(tmp, target, overwrite=False)
    assert target.read_bytes() == b"someone else's"
    assert tmp.read_bytes() == b"ours"  # the finished output is kept, and the message names it
    publish(tmp, target, overwrite=True)
    assert target.read_bytes() == b"ours" and not tmp.exists()
    with pytest.raises(SagcError, match="appeared while") as caught:
        atomic_write_bytes(target, b"third", overwrite=False)
    assert target.read_bytes() == b"ours"
    waiting = next(p for p in tmp_path.iterdir() if p.name != "out.png")  # kept where the message says
    assert str(waiting) in str(caught.value) and waiting.read_bytes() == b"third"


def _sagc(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "sagc", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@needs_ffmpeg
def test_concurrent_runs_on_one_output_leave_one_intact_file(tmp_path, weights):
    source = make_clip(tmp_path / "in.mp4", frames=48, size=(320, 192))
    out = tmp_path / "out.mp4"
    runs = [_sagc("enhance", str(source), "-o", str(out), "--weights", str(weights), "-q") for _ in range(2)]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    failed = next(err for code, err in results if code == 1)
    assert "Traceback" not in failed and failed.count("sagc: error:") == 1 and str(out) in failed
    check = subprocess.run([FFMPEG, "-v", "error", "-i", str(out), "-f", "null", "-"], capture_output=True, text=True)
    assert check.returncode == 0 and check.stderr == ""


def _file_size_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("short", [0.9, 0.002], ids=["while-encoding", "at-final-flush"])
def test_failed_write_exits_1_and_leaves_no_file(tmp_path, weights, short):
    source = make_clip(tmp_path / "in.mp4", frames=24, size=(320, 192))
    options = ["--weights", str(weights), "-q", "--preset", "ultrafast", "--crf", "0"]
    assert main(["enhance", str(source), "-o", str(tmp_path / "full.mp4"), *options]) == 0
    limit = int((tmp_path / "full.mp4").stat().st_size * (1 - short))  # the index at the end no longer fits
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    command = [sys.executable, "-m", "sagc", "enhance", str(source), "-o", str(out_dir / "x.mp4")]
    result = subprocess.run(
        [*command, *options],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_file_size_limit(limit),
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("sagc: error:")]
    assert len(lines) == 1 and "could not write" in lines[0], result.stderr
    assert list(out_dir.iterdir()) == []


def test_tagged_partials_are_found_per_target_with_one_listing_per_folder(tmp_path):
    from sagc.core.atomic import set_run_tag, tagged_partials

    targets = [tmp_path / "a.mp4", tmp_path / "a.b.mp4", tmp_path / "sub" / "c.png"]
    try:
        set_run_tag("0a1b2c3d")
        made = {target: temporary_path(target) for target in targets}
    finally:
        set_run_tag("")
    untagged = temporary_path(tmp_path / "a.mp4")  # sagc enhance's own, not a run's
    (tmp_path / "a.0123456789abcd.partial.mp4.txt").write_text("not ours")
    found = tagged_partials([*targets, tmp_path / "missing" / "d.mp4"])
    assert found == {target: [made[target]] for target in targets}
    assert untagged not in found.get(tmp_path / "a.mp4", [])
    for target in targets:
        assert found[target] == partial_paths(target)

"""Evaluator and bench tell the truth: failures count as failures, ambiguity is refused, the
frames reported are the frames decoded."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import cv2
import pytest

from sagc.cli import main

from .conftest import make_clip, one_error, scene

NAN_PLUGIN = textwrap.dedent(
    """
    def poisoned():
        return lambda x: x * float("nan")
    """
)


def _images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), scene(3 * i, 64, 48))


def test_non_finite_output_is_a_failure_not_a_perfect_score(tmp_path, monkeypatch, capsys):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "nanplugin.py").write_text(NAN_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    _images(tmp_path / "pairs" / "low", ["a.png", "b.png"])
    _images(tmp_path / "pairs" / "high", ["a.png", "b.png"])
    out = tmp_path / "report"
    args = ["eval", "pairs", str(tmp_path / "pairs"), "--method", "identity", "--method", "python:nanplugin:poisoned"]
    assert main([*args, "--out", str(out)]) == 1  # identity still scores, the poisoned method fails everywhere
    assert "python:nanplugin:poisoned failed on every item" in one_error(capsys)
    report = json.loads((out / "report.json").read_text())
    summary = {m["name"]: m for m in report["methods"]}
    assert summary["python:nanplugin:poisoned"]["failed"] == 2
    assert "psnr" not in summary["python:nanplugin:poisoned"]
    errors = [i["error"] for i in report["items"] if i["method"].startswith("python:")]
    assert all("non-finite" in e for e in errors)

    capsys.readouterr()
    only = ["eval", "pairs", str(tmp_path / "pairs"), "--method", "python:nanplugin:poisoned"]
    assert main([*only, "--out", str(tmp_path / "r2")]) == 1
    assert "failed on every item" in one_error(capsys)


def test_every_item_failing_exits_non_zero(tmp_path, capsys):
    _images(tmp_path / "pairs" / "low", ["a.png", "b.png"])
    (tmp_path / "pairs" / "high").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "pairs" / "high" / name).write_bytes(b"not a png")
    assert main(["eval", "pairs", str(tmp_path / "pairs"), "--method", "identity", "--out", str(tmp_path / "r")]) == 1
    assert "failed on every item" in one_error(capsys)


def test_ambiguous_pairs_are_refused(tmp_path, capsys):
    _images(tmp_path / "pairs" / "low", ["a.png", "a.jpg"])
    _images(tmp_path / "pairs" / "high", ["a.png"])
    assert main(["eval", "pairs", str(tmp_path / "pairs"), "--method", "identity", "--out", str(tmp_path / "r")]) == 1
    line = one_error(capsys)
    assert "a.jpg" in line and "a.png" in line and "ambiguous" in line


def test_bench_reports_the_frames_decoded(tmp_path, weights, capsys):
    clip = make_clip(tmp_path / "short.mp4", frames=16, rate=24)
    out = tmp_path / "bench.json"
    assert main(["bench", str(clip), "--frames", "300", "--weights", str(weights), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["frames"] == 16
    assert "16 frames decoded" in capsys.readouterr().out


@pytest.mark.parametrize("frames", [1, 6])
def test_bench_refuses_clips_too_short_for_its_warm_up(tmp_path, weights, capsys, frames):
    clip = make_clip(tmp_path / "tiny.mp4", frames=frames)
    assert main(["bench", str(clip), "--weights", str(weights)]) == 1
    line = one_error(capsys)
    assert f"has {frames} video frames" in line and "at least 10" in line

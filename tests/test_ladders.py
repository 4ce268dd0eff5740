"""Exposure ladders (sagc.eval.ladders): scenes recovered from numbered files in any exposure,
and each scene's darkest capture paired with its normal exposure."""

from __future__ import annotations

import json

import numpy as np

from sagc.cli import main
from sagc.eval.ladders import ladder_pairs, scenes
from sagc.stream.media.frame import Frame
from sagc.stream.media.images import write_image

EXPOSURES = (0.12, 0.3, 1.0, 1.5, 2.2)  # times a scene whose mean luma is about 0.45


def _scene(seed: int) -> np.ndarray:
    """A 96×96 picture of 8×8 blocks with mean near 0.45: a different layout per seed."""
    blocks = np.random.default_rng(seed).uniform(0.1, 0.8, (12, 12, 3))
    return blocks.repeat(8, 0).repeat(8, 1)


def _ladders(folder, count: int = 3) -> list[list[str]]:
    """``count`` scenes of five exposures as 1.png, 2.png, … (by name, 10 would sort before 2),
    then a scene of one image; the names of each scene's files."""
    folder.mkdir(parents=True, exist_ok=True)
    names = iter(range(1, 100))
    expected = []
    for seed in range(count):
        scene = _scene(seed)
        files = []
        for exposure in EXPOSURES:
            path = folder / f"{next(names)}.png"
            write_image(path, Frame(np.clip(scene * exposure * 255, 0, 255).round().astype(np.uint8)))
            files.append(path.name)
        expected.append(files)
    write_image(folder / f"{next(names)}.png", Frame(np.full((96, 96, 3), 40, np.uint8)))
    return expected


def test_scenes_are_recovered_in_natural_order_and_paired_dark_with_normal(tmp_path):
    expected = _ladders(tmp_path)
    found = scenes(sorted(tmp_path.iterdir()))
    assert [[e.path.name for e in group] for group in found] == [*expected, ["16.png"]]  # one image alone
    pairs = ladder_pairs(found)
    assert [(dark.path.name, normal.path.name) for dark, normal in pairs] == [(f[0], f[2]) for f in expected]
    for dark, normal in pairs:
        assert 0.02 <= dark.luma <= 0.12 and abs(normal.luma - 0.45) < 0.05
    # a scene without an exposure in the dark range gives no pair
    assert ladder_pairs(found, dark=(0.001, 0.01)) == []


def test_eval_ladders_scores_each_scene_against_its_normal_exposure(tmp_path, capsys):
    expected = _ladders(tmp_path / "sice")
    out = tmp_path / "report"
    args = ["eval", "ladders", str(tmp_path / "sice"), "--method", "identity", "--method", "gamma:0.5"]
    assert main([*args, "--no-niqe", "--out", str(out)]) == 0
    assert "ladders:" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert {item["item"] for item in report["items"]} == {f"{f[0][:-4]}-{f[2][:-4]}" for f in expected}
    identity, gamma = report["methods"]
    assert identity["luma"] < 0.1 and gamma["psnr"] > identity["psnr"] + 3  # lifting a dark capture helps


def test_eval_ladders_says_in_one_line_what_a_folder_without_ladders_lacks(tmp_path, capsys):
    _ladders(tmp_path / "flat", count=0)  # one image: no scene of four exposures
    assert main(["eval", "ladders", str(tmp_path / "flat"), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sagc: error: ") and "no scene of four or more exposures" in err[0]
    assert not (tmp_path / "r").exists()

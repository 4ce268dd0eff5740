"""tools/holdout.py end to end on a tiny synthetic set: sequences left out in turn, a recipe
trained for two steps on the rest, every part of the table filled."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sagc.stream.media.demo import street_scene
from sagc.stream.media.frame import Frame
from sagc.stream.media.images import write_image

from .conftest import make_clip

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "steps=2",
    "batch_size=2",
    "crop=64",
    "resize_to=72",
    "semantics=false",
    "ema=0",
    "warmup_steps=1",
    "checkpoint_every=1",
    "image_every=1000",
    "train_scales=[4.0]",
]


def _images(folder: Path, prefix: str, count: int, size: tuple[int, int], offset: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        rgb = (street_scene(offset + index, size=size, rate=30) * 255).round().astype(np.uint8)
        write_image(folder / f"{prefix}_{index:05d}.png", Frame(rgb))


def test_leaves_each_sequence_out_and_prints_one_table(tmp_path, capsys):
    camvid = tmp_path / "camvid"
    _images(camvid / "train" / "images", "AAA", 3, (96, 72), 0)
    _images(camvid / "train" / "images", "BBB", 3, (96, 72), 20)
    _images(camvid / "val" / "images", "AAA", 2, (96, 72), 40)  # val repeats a training sequence
    sice = tmp_path / "sice"
    sice.mkdir()
    for index, level in enumerate((0.1, 0.15, 0.5, 0.7)):
        rgb = (street_scene(60 + index, size=(192, 192), rate=30) * 255 * level).round().astype(np.uint8)
        write_image(sice / f"{index}.png", Frame(rgb))
    clip = make_clip(tmp_path / "clip.mp4", frames=6)
    sys.path.insert(0, str(ROOT / "tools"))
    from holdout import LADDER, main

    argv = [
        "--camvid",
        str(camvid),
        "--config",
        str(ROOT / "configs/sagc_default.yaml"),
        "--out",
        str(tmp_path / "runs"),
    ]
    argv += [arg for setting in TINY for arg in ("--set", setting)]
    argv += ["--ladder", "2", "--clips", str(clip), "--clip-frames", "4", "--sice", str(sice), "--sice-count", "2"]
    argv += ["--fade", str(clip), "--fade-frames", "6"]
    argv += ["--cue-steps", "60"]  # each fold's cue, briefly
    figures = main([*argv, "--json", str(tmp_path / "figures.json")])
    assert set(figures["folds"]) == {"AAA", "BBB"}
    assert (tmp_path / "runs" / "without_AAA" / "final.pt").exists()
    linked = sorted(p.name for p in (tmp_path / "runs" / "without_AAA" / "images").iterdir())
    assert linked == [f"BBB_{i:05d}.png" for i in range(3)]  # the held-out sequence never trains
    aaa = figures["folds"]["AAA"]
    assert not aaa["seen"] and aaa["scores"]["default light"]["frames"] == 5
    assert aaa["scores"]["night"]["clean_luma"] == aaa["scores"]["default light"]["clean_luma"]
    assert aaa["scores"]["night"]["luma"] > 0 and len(aaa["ladder"]) == len(LADDER)
    identity = figures["clips"]["clip.mp4"]["identity"]  # each fold's decision; the worst reported
    assert set(identity["by_fold"]) == {"AAA", "BBB"} and identity["psnr"] == min(identity["by_fold"].values()) > 20
    assert identity["fold"] in ("AAA", "BBB")
    assert np.isfinite(figures["clips"]["clip.mp4"]["night"]["relative_flicker"])
    assert figures["sice"]["images"] == 2 and np.isfinite(figures["sice"]["niqe"])
    ladders = figures["ladders"]  # one scene: its darkest exposure against the one at level 0.7
    assert ladders["scenes"] == 1 and ladders["luma_input"] < 0.06 < 0.3 < ladders["luma_reference"]
    assert np.isfinite(ladders["psnr"]) and ladders["luma"] > ladders["luma_input"]
    out = capsys.readouterr().out
    assert figures["fade"]["frames"] == 6 and np.isfinite(figures["fade"]["relative_flicker"])
    # header, per fold two lights and the ladder, the clip, fade, SICE, SICE ladders
    assert out.count("\n") == 2 + 2 * 3 + 3 + 1 + 1 + 1
    assert (
        json.loads((tmp_path / "figures.json").read_text())["folds"]["BBB"]["ladder"]
        == figures["folds"]["BBB"]["ladder"]
    )
    again = main(argv)  # the folds are trained: nothing is trained again, the figures repeat
    assert again["folds"]["AAA"]["scores"] == aaa["scores"]


def test_more_normal_light_folders_train_every_fold_and_the_gate_is_set_for_scoring(tmp_path):
    camvid = tmp_path / "camvid"
    _images(camvid / "train" / "images", "AAA", 2, (96, 72), 0)
    _images(camvid / "train" / "images", "BBB", 2, (96, 72), 20)
    normal = tmp_path / "normal"
    _images(normal, "extra", 2, (96, 72), 80)
    sys.path.insert(0, str(ROOT / "tools"))
    from holdout import main

    from sagc.models import load_checkpoint

    argv = ["--camvid", str(camvid), "--config", str(ROOT / "configs/sagc_default.yaml"), "--out", str(tmp_path / "r")]
    argv += [arg for setting in TINY for arg in ("--set", setting)]
    argv += ["--set", "runtime.gate=true", "--ladder", "1", "--normal", str(normal)]
    plain = main(argv)
    lifted = main([*argv, "--gate-odds", "0.0", "0.01", "--gate-limits", "0.3", "0.3"])
    for held_out in ("AAA", "BBB"):
        data = load_checkpoint(tmp_path / "r" / f"without_{held_out}" / "final.pt")["provenance"]["data"]
        assert data["normal"] == [str(tmp_path / "r" / f"without_{held_out}" / "images"), str(normal)]
        assert data["synthetic_low"] == [str(tmp_path / "r" / f"without_{held_out}" / "images")]
        # every frame enhanced fully and exposed to a mean luma of 0.3 at night
        night, night_plain = lifted["folds"][held_out]["scores"]["night"], plain["folds"][held_out]["scores"]["night"]
        assert abs(night["luma"] - 0.3) < 0.05 and abs(night_plain["luma"] - 0.3) > 0.1


def test_paths_score_the_same_frames_in_each_form_and_yuv420_stores_them_as_video_does(tmp_path):
    camvid = tmp_path / "camvid"
    _images(camvid / "train" / "images", "AAA", 2, (96, 72), 0)
    _images(camvid / "train" / "images", "BBB", 2, (96, 72), 20)
    clip = make_clip(tmp_path / "clip.mp4", frames=4)
    sys.path.insert(0, str(ROOT / "tools"))
    from holdout import Route, main

    argv = ["--camvid", str(camvid), "--config", str(ROOT / "configs/sagc_default.yaml"), "--weights", "default"]
    argv += ["--ladder", "1", "--clips", str(clip), "--clip-frames", "3"]
    runs = {
        name: main([*argv, *extra])
        for name, extra in {
            "rgb": ["--path", "rgb"],
            "rgb 4:2:0": ["--path", "rgb", "--yuv420"],
            "as sagc enhance runs them": [],
            "float 4:2:0": ["--path", "float", "--yuv420"],
            "planar": ["--path", "planar"],
        }.items()
    }
    identity = {name: run["clips"]["clip.mp4"]["identity"]["psnr"] for name, run in runs.items()}
    # a well-lit clip comes back unchanged in every form, scored against the clean clip stored as an unchanged frame is
    assert set(identity.values()) == {100.0}, identity
    default_stills = runs["as sagc enhance runs them"]["folds"]["AAA"]["scores"]
    assert default_stills == runs["rgb"]["folds"]["AAA"]["scores"]  # stills as images: RGB
    night = {name: run["folds"]["AAA"]["scores"]["night"] for name, run in runs.items()}
    assert night["rgb"]["psnr"] != night["rgb 4:2:0"]["psnr"]  # the inputs and references stored as 4:2:0
    clip_night = {name: run["clips"]["clip.mp4"]["night"] for name, run in runs.items()}
    assert clip_night["as sagc enhance runs them"] == clip_night["planar"]  # clips as decoded video: 4:2:0 planes
    for name in ("rgb 4:2:0", "planar"):  # the fast paths stay near the float path on the same 4:2:0 input
        assert abs(night[name]["psnr"] - night["float 4:2:0"]["psnr"]) < 1.0, name
        assert abs(night[name]["luma"] - night["float 4:2:0"]["luma"]) < 0.03, name
    with pytest.raises(ValueError, match="path must be one of"):
        Route("yuv")

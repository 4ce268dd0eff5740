"""`sagc data darken` and `sagc eval pairs|images|video` as a user runs them: real files made
here, report files parsed back, plugin mistakes reported in one line."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from sagc.cli import main
from sagc.core.errors import SagcError
from sagc.core.synth import darken_sequence
from sagc.eval.methods import parse_method
from tests.conftest import make_clip, scene


def _write_images(folder: Path, count: int, size: tuple[int, int] = (200, 112)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"img{i:02d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(scene(5 * i, *size), cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    _write_images(tmp_path / "normal", 3)
    assert main(["data", "darken", str(tmp_path / "normal"), str(tmp_path / "pairs"), "--seed", "0"]) == 0
    return tmp_path / "pairs"


def test_darken_folder_is_the_seeded_issr_definition(pairs: Path, tmp_path: Path) -> None:
    originals = sorted((tmp_path / "normal").glob("*.png"))
    assert sorted(p.name for p in (pairs / "low").iterdir()) == [p.name for p in originals]
    expected = darken_sequence((torch.from_numpy(_rgb(p)).permute(2, 0, 1).float() / 255.0 for p in originals), seed=0)
    for path, dark in zip(originals, expected, strict=True):
        low, high = _rgb(pairs / "low" / path.name), _rgb(pairs / "high" / path.name)
        np.testing.assert_array_equal(high, _rgb(path))
        want = torch.round(dark * 255).to(torch.uint8).permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(low, want)
        assert low.mean() < high.mean()
    other = tmp_path / "pairs_seed1"
    assert main(["data", "darken", str(tmp_path / "normal"), str(other), "--seed", "1"]) == 0
    assert not np.array_equal(_rgb(other / "low" / "img00.png"), _rgb(pairs / "low" / "img00.png"))


def test_darken_refuses_to_overwrite(pairs: Path, tmp_path: Path, capsys) -> None:
    assert main(["data", "darken", str(tmp_path / "normal"), str(pairs)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["data", "darken", str(tmp_path / "normal"), str(pairs), "--overwrite"]) == 0


def test_darken_video_keeps_frames_and_audio(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "day.mp4", frames=12, audio=True)
    out = tmp_path / "dark.mp4"
    assert main(["data", "darken", str(clip), str(out), "--seed", "3"]) == 0
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        assert [s.type for s in b.streams] == [s.type for s in a.streams]
        day = [f.to_ndarray(format="rgb24") for f in a.decode(video=0)]
        dark = [f.to_ndarray(format="rgb24") for f in b.decode(video=0)]
    assert len(dark) == len(day) == 12
    assert all(d.mean() < 0.8 * n.mean() for d, n in zip(dark, day, strict=True))
    # one draw per clip: the brightness ratio barely moves from frame to frame
    ratios = [d.mean() / n.mean() for d, n in zip(dark, day, strict=True)]
    assert max(ratios) - min(ratios) < 0.05


def test_eval_pairs_writes_parseable_reports(pairs: Path, tmp_path: Path, weights: Path, capsys) -> None:
    out = tmp_path / "report"
    code = main(["eval", "pairs", str(pairs), "--method", "identity", "--method", f"sagc:{weights}",
                 "--method", "clahe", "--method", "gamma:0.5", "--y", "--out", str(out)])  # fmt: skip
    assert code == 0
    table = capsys.readouterr().out
    assert "identity" in table and "ms/frame" in table and "device: cpu" in table
    report = json.loads((out / "report.json").read_text())
    names = [m["name"] for m in report["methods"]]
    assert names == ["identity", f"sagc:{weights}", "clahe", "gamma:0.5"]
    for method in report["methods"]:
        for key in ("psnr", "ssim", "psnr_y", "ssim_y", "niqe", "ms_per_frame"):
            assert isinstance(method[key], float), (method["name"], key)
        assert method["failed"] == 0
    assert len(report["items"]) == 3 * 4
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert {r["item"] for r in rows} == {"img00", "img01", "img02", "mean"}
    identity = next(r for r in rows if r["item"] == "mean" and r["method"] == "identity")
    assert float(identity["psnr"]) == pytest.approx(report["methods"][0]["psnr"])
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 3 * 100  # three rows of thumbnails
    gamma = report["methods"][3]
    assert gamma["psnr"] > report["methods"][0]["psnr"]  # brightening a dark picture helps


def test_identical_pairs_report_infinite_psnr(tmp_path: Path, capsys) -> None:
    _write_images(tmp_path / "same" / "low", 2)
    _write_images(tmp_path / "same" / "high", 2)
    assert main(["eval", "pairs", str(tmp_path / "same"), "--method", "identity", "--no-niqe",
                 "--out", str(tmp_path / "r")]) == 0  # fmt: skip
    assert " inf " in capsys.readouterr().out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["methods"][0]["psnr"] == "inf" and report["methods"][0]["ssim"] == pytest.approx(1.0)


PLUGIN = textwrap.dedent(
    """
    import torch

    def brighten(factor="2"):
        k = float(factor)
        return lambda x: (x * k).clamp(0, 1)

    def fussy():
        def run(x):
            if x.shape[-1] > 150:
                raise RuntimeError("too wide for me")
            return x
        return run

    def not_callable():
        return 42
    """
)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch) -> str:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "myplugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    return "myplugin"


def test_python_plugin_runs_and_a_failing_item_is_reported(tmp_path: Path, plugin: str, capsys, caplog) -> None:
    folder = tmp_path / "mixed"
    _write_images(folder, 2, size=(104, 100))
    _write_images(folder / "wide", 1, size=(200, 100))
    for path in (folder / "wide").iterdir():
        path.rename(folder / f"wide_{path.name}")
    out = tmp_path / "r"
    code = main(["eval", "images", str(folder), "--method", f"python:{plugin}:brighten:factor=1.5",
                 "--method", f"python:{plugin}:fussy", "--out", str(out)])  # fmt: skip
    assert code == 0
    assert "1 item(s) failed" in capsys.readouterr().out
    assert "fussy failed on wide_img00: RuntimeError: too wide for me" in caplog.text
    report = json.loads((out / "report.json").read_text())
    fussy = [i for i in report["items"] if i["method"].endswith("fussy")]
    assert [i["error"] is not None for i in fussy] == [False, False, True]
    summary = {m["name"]: m for m in report["methods"]}
    assert summary[f"python:{plugin}:fussy"]["failed"] == 1
    brighter = summary[f"python:{plugin}:brighten:factor=1.5"]["luma"]
    assert brighter > summary[f"python:{plugin}:fussy"]["luma"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bogus", "unknown method 'bogus'"),
        ("python:no_such_module_xyz:f", "cannot import no_such_module_xyz"),
        ("python:json:nope", "json has no callable nope"),
        ("python:json", "expected python:package.module:factory"),
        ("gamma:abc", "must be a number"),
        ("gamma:-1", "must be positive"),
        ("clahe:clip=2:size=3", "unknown option"),
        ("sagc:smooth=1.5", "smooth must be a finite number"),
        ("sagc:denoise=-2", "denoise must be a finite number"),
        ("sagc:missing/weights.pt", "weights file missing/weights.pt not found"),
        ("sagc:scale", "'scale' is neither a weights file nor an installed name; options are key=value"),
        ("sagc:scale=2:gain", "expected key=value"),
    ],
)
def test_plugin_mistakes_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(SagcError, match=message.replace("(", r"\(")):
        parse_method(spec)


def test_sagc_denoise_option_reaches_the_enhancer(weights: Path) -> None:
    x = (0.15 + 0.02 * torch.randn(1, 3, 24, 32, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    plain, filtered = parse_method(f"sagc:{weights}:denoise=0"), parse_method(f"sagc:{weights}:denoise=6")
    assert plain.enhancer.denoise == 0.0 and filtered.enhancer.denoise == 6.0
    with torch.no_grad():
        a, b = plain.enhance(x), filtered.enhance(x)
    # noise-like input: the filtered output varies less from pixel to pixel
    assert float((b[..., 1:] - b[..., :-1]).abs().mean()) < 0.7 * float((a[..., 1:] - a[..., :-1]).abs().mean())


def test_plugin_factory_problems(plugin: str) -> None:
    with pytest.raises(SagcError, match="returned int, not a callable"):
        parse_method(f"python:{plugin}:not_callable")
    with pytest.raises(SagcError, match="failed"):
        parse_method(f"python:{plugin}:brighten:colour=red")


def test_cli_method_error_is_one_line(pairs: Path, tmp_path: Path, capsys) -> None:
    assert main(["eval", "pairs", str(pairs), "--method", "python:nowhere_abc:f", "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sagc: error: method 'python:nowhere_abc:f'")
    assert main(["eval", "pairs", str(tmp_path / "nothing")]) == 1
    assert "not a directory" in capsys.readouterr().err


def test_eval_video_darkened_reports_psnr_flicker_and_plot(tmp_path: Path, weights: Path, capsys) -> None:
    clip = make_clip(tmp_path / "day.mp4", frames=10, size=(128, 96))
    out = tmp_path / "v"
    code = main(["eval", "video", str(clip), "--darken", "--seed", "0", "--method", f"sagc:{weights}",
                 "--method", f"sagc:{weights}:smooth=0.8", "--method", "identity", "--out", str(out)])  # fmt: skip
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    by_name = {m["name"]: m for m in report["methods"]}
    for method in by_name.values():
        for key in ("psnr", "ssim", "flicker", "warp_error", "luma", "ms_per_frame"):
            assert isinstance(method[key], float), (method["name"], key)
        assert len(method["per_frame_luma"]) == 10
    assert by_name["identity"]["flicker"] == pytest.approx(1.0)
    plot = cv2.imread(str(out / "video_plot.png"))
    assert plot is not None and plot.shape[1] >= 600
    assert cv2.imread(str(out / "contact_sheet.png")) is not None
    assert "flicker" in capsys.readouterr().out


def test_eval_video_without_reference_has_no_psnr(tmp_path: Path, capsys) -> None:
    clip = make_clip(tmp_path / "night.mp4", frames=6, size=(96, 64), brightness=0.3)
    out = tmp_path / "v"
    assert main(["eval", "video", str(clip), "--method", "gamma:0.6", "--frames", "4", "--out", str(out)]) == 0
    method = json.loads((out / "report.json").read_text())["methods"][0]
    assert "psnr" not in method and method["flicker"] > 0 and len(method["per_frame_luma"]) == 4
    assert main(["eval", "video", str(tmp_path / "missing.mp4")]) == 1
    assert "input not found" in capsys.readouterr().err


def test_eval_images_max_luma_keeps_the_dark_ones(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name, gain in (("dark", 0.2), ("bright", 1.0)):
        cv2.imwrite(str(folder / f"{name}.png"), (scene(1, 200, 112) * gain).astype(np.uint8))
    out = tmp_path / "r"
    assert main(["eval", "images", str(folder), "--method", "identity", "--max-luma", "0.25", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [i["item"] for i in report["items"]] == ["dark"]
    assert "1 of 2" in report["source"]
    assert main(["eval", "images", str(folder), "--max-luma", "0.01", "--out", str(out), "--overwrite"]) == 1
    assert "no image" in capsys.readouterr().err


def test_an_unreadable_pair_is_a_failed_item_not_the_end(pairs: Path, tmp_path: Path, capsys) -> None:
    (pairs / "low" / "img01.png").write_bytes(b"not a png")
    out = tmp_path / "r"
    assert main(["eval", "pairs", str(pairs), "--method", "identity", "--no-niqe", "--out", str(out)]) == 0
    assert "1 item(s) failed" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    errors = {i["item"]: i["error"] for i in report["items"]}
    assert errors["img00"] is None and errors["img02"] is None and "not a readable image" in errors["img01"]


def test_darken_at_night_level_is_darker_and_seeded(tmp_path: Path, capsys) -> None:
    _write_images(tmp_path / "normal", 3)
    assert main(["data", "darken", str(tmp_path / "normal"), str(tmp_path / "dusk"), "--seed", "0"]) == 0
    night = ["data", "darken", str(tmp_path / "normal"), str(tmp_path / "night"), "--seed", "0", "--light", "night"]
    assert main(night) == 0
    for path in sorted((tmp_path / "normal").iterdir()):
        assert _rgb(tmp_path / "night" / "low" / path.name).mean() < _rgb(tmp_path / "dusk" / "low" / path.name).mean()
    again = ["data", "darken", str(tmp_path / "normal"), str(tmp_path / "again"), "--seed", "0", "--light", "0.08:0.25"]
    assert main(again) == 0
    for path in sorted((tmp_path / "normal").iterdir()):
        np.testing.assert_array_equal(
            _rgb(tmp_path / "again" / "low" / path.name), _rgb(tmp_path / "night" / "low" / path.name)
        )
    capsys.readouterr()
    assert main(["data", "darken", str(tmp_path / "normal"), str(tmp_path / "x"), "--light", "moonless"]) == 1
    assert "--light wants LOW:HIGH" in capsys.readouterr().err

"""Numbers are checked: every run-time setting and encoder option finite and in range, wherever it
comes from (command line, method spec, checkpoint); broken checkpoints give one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sagc.cli import main
from sagc.core.checks import check_number
from sagc.core.errors import SagcError
from sagc.eval.methods import parse_method
from sagc.models import GammaEstimator, load_enhancer
from sagc.models.checkpoint import ENHANCER_KIND, save_checkpoint

from .conftest import make_clip, one_error


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("numbers") / "clip.mp4", frames=4, brightness=0.3)


@pytest.mark.parametrize(
    "option,value,pattern",
    [
        ("--gain", "nan", "gain must be a finite number"),
        ("--gain", "inf", "gain must be a finite number"),
        ("--gain", "0", "gain must be a finite number"),
        ("--scale", "nan", "scale must be a finite number"),
        ("--scale", "inf", "scale must be a finite number"),
        ("--scale", "1000", "scale must be a finite number"),
        ("--denoise", "inf", "denoise must be a finite number"),
        ("--denoise", "nan", "denoise must be a finite number"),
        ("--guide", "nan", "guide must be a finite number"),
        ("--guide", "1.5", "guide must be a finite number"),
        ("--smooth", "nan", "smooth must be a finite number in [0, 1)"),
        ("--smooth", "inf", "smooth must be a finite number in [0, 1)"),
        ("--crf", "52", "--crf for libx264 must be between 0 and 51"),
        ("--crf", "-1", "--crf"),
    ],
)
def test_bad_numbers_on_the_command_line(tmp_path, clip, weights, capsys, option, value, pattern):
    out = tmp_path / "out.mp4"
    code = main(["enhance", str(clip), "-o", str(out), "--weights", str(weights), "-q", option, value])
    assert code == 1
    assert pattern in one_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_crf_range_follows_the_codec(tmp_path, clip, weights):
    # 60 is out of range for x264 but inside VP9's 0–63 scale
    assert main(["enhance", str(clip), "-o", str(tmp_path / "out.webm"), "--weights", str(weights), "-q",
                 "--crf", "60"]) == 0  # fmt: skip


@pytest.mark.parametrize(
    "spec,pattern",
    [
        ("sagc:{w}:gain=nan", "gain must be a finite number"),
        ("sagc:{w}:scale=inf", "scale must be a finite number"),
        ("sagc:{w}:denoise=1e9", "denoise must be a finite number"),
        ("sagc:{w}:smooth=nan", "smooth"),
        ("gamma:nan", "finite"),
        ("clahe:clip=inf", "finite"),
    ],
)
def test_bad_numbers_in_method_specs(weights, spec, pattern):
    with pytest.raises(SagcError, match=pattern.replace("[", r"\[")):
        parse_method(spec.format(w=weights))


def _checkpoint(path: Path, *, state=None, arch=None, runtime=None, drop: str | None = None) -> Path:
    torch.manual_seed(0)
    estimator = GammaEstimator()
    save_checkpoint(
        path,
        kind=ENHANCER_KIND,
        arch=arch if arch is not None else {"width": 32},
        state_dict=state if state is not None else estimator.state_dict(),
        runtime=runtime if runtime is not None else {"scale": 2.0},
    )
    if drop is not None:
        data = torch.load(path, weights_only=True)
        del data[drop]
        torch.save(data, path)
    return path


def _nan_state() -> dict[str, torch.Tensor]:
    state = GammaEstimator().state_dict()
    state["conv7.1.bias"] = torch.full_like(state["conv7.1.bias"], float("nan"))
    return state


@pytest.mark.parametrize(
    "make,pattern",
    [
        (lambda p: _checkpoint(p, state=_nan_state()), "non-finite weights"),
        (lambda p: _checkpoint(p, runtime={"gain": float("nan")}), "gain must be a finite number"),
        (lambda p: _checkpoint(p, runtime={"scale": float("inf")}), "scale must be a finite number"),
        (lambda p: _checkpoint(p, runtime={"scale": "eight"}), "scale must be a number"),
        (lambda p: _checkpoint(p, runtime={"gate": "yes"}), "gate must be on or off"),
        (lambda p: _checkpoint(p, arch={"width": 10**9}), "unknown architecture"),
        (lambda p: _checkpoint(p, arch={"width": "32"}), "unknown architecture"),
        (lambda p: _checkpoint(p, arch={"width": 16}), "do not match"),
        (lambda p: _checkpoint(p, drop="state_dict"), "incomplete"),
        (lambda p: _checkpoint(p, drop="arch"), "incomplete"),
    ],
    ids=[
        "nan-weights",
        "nan-gain",
        "inf-scale",
        "str-scale",
        "str-gate",
        "huge",
        "str-width",
        "mismatch",
        "no-state",
        "no-arch",
    ],  # fmt: skip
)
def test_broken_checkpoints_give_one_line(tmp_path, clip, capsys, make, pattern):
    path = make(tmp_path / "broken.pt")
    with pytest.raises(SagcError, match=pattern):
        load_enhancer(path)
    out = tmp_path / "out.mp4"
    assert main(["enhance", str(clip), "-o", str(out), "--weights", str(path), "-q"]) == 1
    assert pattern in one_error(capsys)
    assert not out.exists()


def test_check_number_names_the_range():
    assert check_number("x", 3, low=0, high=5) == 3.0
    with pytest.raises(ValueError, match=r"x must be a finite number in \(0, 5\], got 0"):
        check_number("x", 0, low=0, high=5, low_open=True)
    with pytest.raises(ValueError, match="x must be a number"):
        check_number("x", True, low=0, high=5)

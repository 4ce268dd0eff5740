"""One description of the run-time settings: every field of RuntimeSettings reaches every surface
(CLI flag, ``sagc:`` method key, checkpoint round trip, CPU 8-bit stage, CUDA stage, ONNX metadata,
preview control), walked field by field so a new setting is checked without editing this file."""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pytest
import torch

from sagc.cli import build_parser
from sagc.cli.options import enhancer_from_args
from sagc.core.errors import SagcError
from sagc.eval.methods import parse_method
from sagc.models import GammaEstimator, RuntimeSettings, load_enhancer, save_enhancer
from sagc.models.settings import controls, settings_fields
from sagc.stream.apps.serve import parse_controls
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.media.frame import Frame

from .conftest import EXPORTED_SETTINGS, scene

# a valid value away from the default for each field; a new field needs an entry here (the
# first test says so), and nothing else in this file
OTHER = {
    "scale": 3.0,
    "gain": 1.25,
    "denoise": 2.5,
    "gate": True,
    "guide": 0.3,
    "ev": 0.5,
    "smooth": 0.6,
    "temporal_denoise": 0.5,
    "black": 0.8,
}
FIELDS = [s.name for s in settings_fields()]


def text(value: float | bool) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else f"{value:g}"


def test_every_field_has_a_test_value_and_a_flag():
    assert set(OTHER) == set(FIELDS)
    flags = [s.flag for s in settings_fields()]
    assert len(set(flags)) == len(flags) and all(f.startswith("--") for f in flags)
    for setting in settings_fields():
        default = getattr(RuntimeSettings(), setting.name)
        assert OTHER[setting.name] != default and setting.check(OTHER[setting.name]) == OTHER[setting.name]


def test_settings_are_frozen_and_checked():
    settings = RuntimeSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.scale = 2.0  # type: ignore[misc]
    for name in FIELDS:
        with pytest.raises(ValueError, match=name):
            RuntimeSettings(**{name: float("nan") if name != "gate" else "yes"})
    with pytest.raises(ValueError, match="unknown setting"):
        RuntimeSettings.from_mapping({"sharpen": 1.0})
    assert RuntimeSettings.from_mapping({}) == settings  # missing keys: the defaults


@pytest.mark.parametrize("name", FIELDS)
def test_field_reaches_the_command_line(weights, name):
    setting = next(s for s in settings_fields() if s.name == name)
    args = build_parser().parse_args(
        ["enhance", "clip.mp4", "--weights", str(weights), setting.flag, text(OTHER[name])]
    )
    assert getattr(enhancer_from_args(args).settings, name) == OTHER[name]
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("enhance", "preview", "bench", "export"):
        assert setting.flag in commands.choices[command].format_help(), command


@pytest.mark.parametrize("name", FIELDS)
def test_field_reaches_method_specs(weights, name):
    method = parse_method(f"sagc:{weights}:{name}={text(OTHER[name])}")
    assert getattr(method.enhancer.settings, name) == OTHER[name]
    bad = "maybe" if name == "gate" else "nan"
    with pytest.raises(SagcError, match=name):
        parse_method(f"sagc:{weights}:{name}={bad}")


@pytest.mark.parametrize("name", FIELDS)
def test_field_survives_a_checkpoint_round_trip(tmp_path, name):
    path = save_enhancer(tmp_path / "w.pt", GammaEstimator(), **{name: OTHER[name]})
    loaded = load_enhancer(path).settings
    assert getattr(loaded, name) == OTHER[name]
    assert loaded == RuntimeSettings().replace(**{name: OTHER[name]})


def _frames(name: str) -> list[Frame]:
    """Frames on which the setting changes the picture: dark and noisy for most, a bright one
    with highlights for the exposure gate, two different ones for smoothing."""
    rng = np.random.default_rng(0)
    if name == "gate":
        bright = scene(0, 96, 64).astype(np.float32) * 0.8 + 50
        bright[:16, :16] = 255
        return [Frame(np.clip(bright, 0, 255).astype(np.uint8))]
    dark = [scene(i * 9, 96, 64).astype(np.float32) * 0.25 + rng.normal(0, 6, (64, 96, 3)) for i in range(2)]
    return [Frame(np.clip(d, 0, 255).astype(np.uint8)) for d in dark]


def _outputs(stage, frames: list[Frame]) -> list[np.ndarray]:
    stage.reset()
    return [stage(frame).rgb for frame in frames]


def _reaches_stage(make_stage, name: str) -> None:
    stage = make_stage()
    frames = _frames(name)
    base = RuntimeSettings(scale=2.0, guide=0.5 if name != "guide" else 0.0)
    stage.configure(base)
    before = _outputs(stage, frames)
    stage.configure(base.replace(**{name: OTHER[name]}))
    assert getattr(stage.settings, name) == OTHER[name]
    after = _outputs(stage, frames)
    assert any(np.abs(a.astype(int) - b.astype(int)).max() > 0 for a, b in zip(before, after, strict=True)), name
    stage.configure(base)
    assert all(np.array_equal(a, b) for a, b in zip(_outputs(stage, frames), before, strict=True)), name


@pytest.mark.parametrize("name", FIELDS)
def test_field_reaches_the_cpu_8bit_stage(weights, name):
    _reaches_stage(lambda: CpuStage(load_enhancer(weights)), name)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here: CUDA stage surface test skipped")
@pytest.mark.parametrize("name", FIELDS)
def test_field_reaches_the_cuda_stage(weights, name):
    from sagc.stream.enhance.cuda_stage import CudaStage

    _reaches_stage(lambda: CudaStage(load_enhancer(weights), device="cuda", dtype=torch.float32), name)


def test_every_field_reaches_the_onnx_metadata(tmp_path, weights, exported):
    pytest.importorskip("onnx", reason="onnx not installed: export surface test skipped")
    import onnx

    from sagc.models.export import export_onnx

    stateless = [name for name in FIELDS if name not in ("smooth", "temporal_denoise")]
    assert sorted(EXPORTED_SETTINGS) == sorted(stateless)  # the shared export changes every one
    enhancer = load_enhancer(weights, **EXPORTED_SETTINGS)
    for name, default in RuntimeSettings().as_dict().items():
        assert name not in EXPORTED_SETTINGS or getattr(enhancer.settings, name) != default, name
    props = {p.key: p.value for p in onnx.load(str(exported[0])).metadata_props}
    assert json.loads(props["sagc_runtime"]) == {
        name: text(value) for name, value in enhancer.settings.as_dict().items()
    }
    for name in ("smooth", "temporal_denoise"):
        with pytest.raises(SagcError, match=name):
            export_onnx(load_enhancer(weights, **{name: 0.5}), tmp_path / "s.onnx")


def test_every_control_toggles_its_field():
    for control in controls():  # the server takes exactly these toggles, as JSON booleans
        assert parse_controls({control: True}) == {control: True}
        with pytest.raises(ValueError, match=control):
            parse_controls({control: "true"})
    reference = RuntimeSettings(denoise=3.0)
    for control, setting in controls().items():
        off = reference.toggled(setting, False, reference=reference)
        assert setting.off(getattr(off, setting.name)), control
        on = off.toggled(setting, True, reference=reference)
        wanted = getattr(reference, setting.name)
        assert getattr(on, setting.name) == (setting.on if setting.off(wanted) else wanted), control

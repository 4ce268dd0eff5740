"""`sagc export`: the ONNX model, run by onnxruntime (an independent implementation), computes
what our enhancer computes, at any batch and frame size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from sagc.core.errors import SagcError
from sagc.models import load_enhancer
from sagc.models.export import export_onnx

from .conftest import EXPORTED_SETTINGS


def sagc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sagc", *args], capture_output=True, text=True, timeout=300)


def _exported_enhancer(weights, **overrides):
    """The enhancer the shared exported file was made from (``overrides`` changed)."""
    return load_enhancer(weights, **{**EXPORTED_SETTINGS, **overrides})


def test_the_command_says_what_it_exported(exported):
    _, printed = exported
    assert "scale 3, gain 1.25, denoise 2.5, gate on, guide 0.3, ev 0.5" in printed


@pytest.mark.parametrize("shape", [(1, 3, 48, 64), (3, 3, 37, 90), (1, 3, 16, 16)])
def test_onnxruntime_matches_the_enhancer_at_any_size(exported, weights, shape):
    session = onnxruntime.InferenceSession(str(exported[0]), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(sum(shape))
    x = torch.rand(shape, generator=generator) ** 2  # mostly dark, some bright
    x[0, :, : shape[2] // 4] = 0.95  # a bright band: the gate's highlights
    (got,) = session.run(["enhanced"], {"image": x.numpy()})
    with torch.no_grad():
        want = _exported_enhancer(weights)(x).numpy()
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-4


def test_metadata_records_the_settings(exported, weights):
    model = onnx.load(str(exported[0]))
    props = {p.key: p.value for p in model.metadata_props}
    runtime = {"scale": "3", "gain": "1.25", "denoise": "2.5", "gate": "on", "guide": "0.3", "ev": "0.5", "smooth": "0"}
    assert json.loads(props["sagc_runtime"]) == {**runtime, "temporal_denoise": "0", "black": "2"}
    assert props["sagc_weights"] == Path(weights).name
    assert [i.name for i in model.graph.input] == ["image"]
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]


def test_existing_output_is_kept_and_bad_paths_are_clean_errors(tmp_path, weights):
    existing = tmp_path / "old.onnx"
    existing.write_bytes(b"keep me")
    for args, message in (
        (("-o", str(existing)), "pass --overwrite"),
        (("-o", str(tmp_path / "model.pt")), "should end in .onnx"),
        (("-o", str(tmp_path / "m.onnx"), "--denoise", "-1"), "denoise must be a finite number"),
    ):
        result = sagc("export", "--weights", str(weights), *args)
        assert result.returncode != 0 and "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("sagc: error:")]
        assert len(errors) == 1 and message in errors[0], result.stderr
    assert existing.read_bytes() == b"keep me"
    assert not (tmp_path / "m.onnx").exists()


def test_missing_exporter_packages_are_named(monkeypatch, tmp_path, weights):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "onnxscript" else real(name))
    with pytest.raises(SagcError, match=r'needs onnxscript, which is not installed: pip install "sagc\[export\]"'):
        export_onnx(load_enhancer(weights), tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_the_default_weights_export_without_their_video_only_settings(tmp_path):
    """The default weights reduce noise over time in video; a per-image graph leaves that out."""
    assert load_enhancer("default").settings.temporal_denoise > 0
    out = tmp_path / "default.onnx"
    result = sagc("export", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "temporal_denoise 0 (temporal_denoise of the weights left out: video only)" in result.stdout
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props["sagc_runtime"])["temporal_denoise"] == "0"
    refused = sagc("export", "-o", str(tmp_path / "t.onnx"), "--temporal-denoise", "0.5")
    assert refused.returncode == 1 and "--temporal-denoise 0" in refused.stderr


def test_the_black_point_is_part_of_the_exported_graph(exported, weights):
    """``--black`` presses each dark image's floor down inside the graph, as the enhancer does."""
    session = onnxruntime.InferenceSession(str(exported[0]), providers=["CPUExecutionProvider"])
    x = 0.02 + 0.1 * torch.rand((2, 3, 48, 64), generator=torch.Generator().manual_seed(3)) ** 2  # night
    (got,) = session.run(["enhanced"], {"image": x.numpy()})
    with torch.no_grad():
        want = _exported_enhancer(weights)(x).numpy()
        plain = _exported_enhancer(weights, black=0.0)(x).numpy()
    assert np.abs(got - want).max() < 1e-4
    assert np.quantile(want, 0.01) < np.quantile(plain, 0.01) - 0.02  # the floor moved down

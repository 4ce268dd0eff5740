"""The enhance stage: the 8-bit CPU table path matches the float path within 0.1 dB."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sagc.core.synth import darken, sample_darken_params
from sagc.eval.metrics import psnr
from sagc.models import load_enhancer
from sagc.stream.cpu_stage import CpuStage, GammaTable
from sagc.stream.demo import street_scene
from sagc.stream.frame import Frame


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("scale,gain", [(1.0, 1.0), (4.0, 1.0), (3.0, 1.5)])
def test_fast_path_matches_float_path(weights, scale, gain):
    clean = (street_scene(10, size=(321, 181), rate=30) * 255).round().astype(np.uint8)
    g = torch.Generator().manual_seed(0)
    dark_t = darken(_to_tensor(clean), sample_darken_params(g), generator=g)
    dark = (dark_t[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    enhancer = load_enhancer(weights, scale=scale, gain=gain)
    fast = CpuStage(enhancer)(Frame(dark)).rgb
    slow = CpuStage(load_enhancer(weights, scale=scale, gain=gain), fast=False)(Frame(dark)).rgb
    assert fast.shape == slow.shape == clean.shape and fast.dtype == np.uint8
    reference = _to_tensor(clean)
    gap = float(psnr(_to_tensor(fast), reference) - psnr(_to_tensor(slow), reference))
    assert abs(gap) <= 0.1
    assert float(psnr(_to_tensor(fast), _to_tensor(slow))) > 40


def test_gamma_table_values():
    table = GammaTable(eps=1e-4)
    rgb = np.array([[[0, 64, 255]]], dtype=np.uint8)
    levels = np.array([[[255, 128, 0]]], dtype=np.uint8)  # γ = 1, ~0.5, 0
    out = table.apply(rgb, levels)
    expected = [round(255 * 1e-4), round(255 * (64 / 255) ** (128 / 255)), 255]
    assert out.tolist() == [[expected]]


def test_16bit_frames_use_the_float_path(weights):
    frame = Frame((np.random.default_rng(0).random((20, 30, 3)) * 9000).astype(np.uint16))
    out = CpuStage(load_enhancer(weights))(frame)
    assert out.rgb.dtype == np.uint16 and (out.rgb.astype(int) >= frame.rgb.astype(int) - 1).all()

"""The black point (``--black``, on in the default weights) through the CPU stage: a dark frame's
floor stays dark, a well-exposed one is untouched, and the 4:2:0 path keeps to the float path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sagc.core.synth import NIGHT_LIGHT, darken, sample_darken_params
from sagc.eval.metrics import psnr
from sagc.models import load_enhancer
from sagc.ops.colour import luma
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.enhance.reference import ReferenceStage
from sagc.stream.media.demo import street_scene
from sagc.stream.media.frame import Frame, YuvPlanes

SIZE = (240, 136)


def _night(index: int) -> tuple[np.ndarray, np.ndarray]:
    """A street scene under a dark sky (uint8 RGB, its floor near level 8) and its darkening to
    night level."""
    scene = street_scene(index, size=SIZE, rate=30)
    scene[: SIZE[1] // 3] *= 0.06  # the sky of a night street: near black, with the scene's texture
    clean = (scene * 255).round().astype(np.uint8)
    generator = torch.Generator().manual_seed(index)
    x = torch.from_numpy(clean).permute(2, 0, 1).float() / 255
    dark = darken(x, sample_darken_params(generator, light=NIGHT_LIGHT), generator=generator)
    return clean, (dark.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


def _stage(black: float | None = None, *, reference: bool = False) -> CpuStage | ReferenceStage:
    """The default weights' stage for stills, with their own black point or ``black``."""
    enhancer = load_enhancer("default")
    if black is not None:
        enhancer.settings = enhancer.settings.replace(black=black)
    stage = (ReferenceStage if reference else CpuStage)(enhancer)
    stage.configure(stage.settings, temporal=False)
    return stage


def _floor(rgb: np.ndarray) -> float:
    """1st-percentile luma in 8-bit levels."""
    return float(np.percentile(luma(torch.from_numpy(rgb).permute(2, 0, 1).float()).numpy(), 1))


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("planar", [False, True], ids=["rgb", "420"])
def test_the_black_point_keeps_a_night_frames_floor_near_the_clean_ones(planar):
    clean, dark = _night(6)
    assert load_enhancer("default").settings.black > 0
    outputs = {}
    for black in (0.0, None):
        frame = Frame(planes=YuvPlanes.from_rgb(dark, matrix="itu601", color_range=1)) if planar else Frame(dark)
        out = _stage(black)(frame)
        outputs[black] = out.planes.to_rgb(accurate=True) if planar else out.rgb
    lifted, kept = _floor(outputs[0.0]), _floor(outputs[None])
    assert kept < lifted - 5, (kept, lifted)  # the lift no longer raises the floor with the detail
    assert abs(kept - _floor(clean)) < abs(lifted - _floor(clean))
    assert luma(_tensor(outputs[None])).mean() > 2 * luma(_tensor(dark)).mean()  # still lifted


def test_a_well_exposed_frame_is_untouched_with_the_black_point_on():
    bright = (street_scene(0, size=SIZE, rate=30) * 255).round().astype(np.uint8)
    planes = YuvPlanes.from_rgb(bright, matrix="itu601", color_range=1)
    assert _stage()(Frame(planes=planes)).planes is planes
    assert np.array_equal(_stage()(Frame(bright)).rgb, bright)


def test_the_420_path_with_a_black_point_keeps_to_the_float_path():
    """Night stills through the 4:2:0 path and the float reference with the black point on: the
    8-bit thumbnail's rounding moves the point a little, so PSNR against the clean frame may
    differ by at most 0.3 dB on average."""
    scores = {True: [], False: []}
    for index in range(0, 40, 8):
        clean, dark = _night(index)
        planes = YuvPlanes.from_rgb(dark, matrix="itu601", color_range=1)
        fast = _stage()(Frame(planes=planes)).planes.to_rgb(accurate=True)
        slow = _stage(reference=True)(Frame(planes.to_rgb(accurate=True))).rgb
        for planar, out in ((True, fast), (False, slow)):
            scores[planar].append(float(psnr(_tensor(out), _tensor(clean))))
    assert np.mean(scores[True]) >= np.mean(scores[False]) - 0.3, scores

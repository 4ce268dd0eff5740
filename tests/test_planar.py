"""The 4:2:0 path: planes from the decoder to the encoder, enhanced without RGB at full resolution."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch

from sagc.cli import main
from sagc.core.synth import DAY_LIGHT, NIGHT_LIGHT, darken, sample_darken_params
from sagc.eval.metrics import psnr, ssim
from sagc.models import load_enhancer
from sagc.ops.denoise import noise_level_plane
from sagc.ops.gamma import PlanarGammaMap
from sagc.ops.guide import Curve
from sagc.ops.temporal_denoise import TemporalDenoiser
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.enhance.reference import ReferenceStage
from sagc.stream.media.demo import street_scene
from sagc.stream.media.frame import Frame, YuvPlanes
from sagc.stream.media.sinks import EncoderSettings, EncoderSink
from sagc.stream.media.sources import VideoSource
from sagc.stream.run.jobs import Job
from sagc.stream.run.transcode import run_video_job

from .conftest import FFMPEG, make_clip, needs_ffmpeg


def _to_planes(rgb: np.ndarray, *, matrix: str = "itu601", color_range: int = 1) -> YuvPlanes:
    return YuvPlanes.from_rgb(rgb, matrix=matrix, color_range=color_range)  # unbiased: the comparisons' own


def _to_rgb(planes: YuvPlanes) -> np.ndarray:
    return planes.to_rgb(accurate=True)


def _planar_gamma(planes: YuvPlanes, curve: Curve) -> YuvPlanes:
    out = YuvPlanes.empty_like(planes)
    PlanarGammaMap(eps=1e-4).apply(
        planes.split(), curve, out=out.split(), matrix=planes.matrix, color_range=planes.color_range
    )
    return out


def _frames(spec: str, **options: object) -> list[Frame]:
    with VideoSource(spec, **options) as source:
        return [item for item in source if isinstance(item, Frame)]


def _ffmpeg_i420(path, pix_fmt: str = "yuv420p") -> bytes:
    """Every frame of ``path`` decoded by the ffmpeg CLI as raw 4:2:0 planes (``pix_fmt``: the
    stream's own, so nothing is converted)."""
    return subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"],
        check=True,
        capture_output=True,
    ).stdout


@needs_ffmpeg
@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuvj420p"])
def test_planar_source_hands_on_the_decoders_planes_and_the_same_rgb(tmp_path, pix_fmt):
    clip = make_clip(tmp_path / "in.mp4", pix_fmt=pix_fmt, frames=6)
    planar, rgb = _frames(str(clip), planar=True), _frames(str(clip))
    assert len(planar) == len(rgb) == 6
    assert all(f.planes is not None for f in planar) and all(f.planes is None for f in rgb)
    assert planar[0].planes.color_range == (2 if pix_fmt == "yuvj420p" else 1)
    oracle = _ffmpeg_i420(clip, pix_fmt)
    assert b"".join(f.planes.i420.tobytes() for f in planar) == oracle
    for a, b in zip(planar, rgb, strict=True):  # RGB converted on first use, bit for bit the decoder's
        assert np.array_equal(a.rgb, b.rgb) and (a.pts, a.index) == (b.pts, b.index)


@pytest.mark.parametrize("pix_fmt", ["yuv444p", "yuv420p10le"])
def test_other_layouts_and_depths_stay_rgb(tmp_path, pix_fmt):
    clip = make_clip(tmp_path / "in.mp4", pix_fmt=pix_fmt, frames=3)
    frames = _frames(str(clip), planar=True)
    assert len(frames) == 3 and all(f.planes is None and f.rgb.shape == (96, 160, 3) for f in frames)


def test_frame_checks_its_planes():
    with pytest.raises(ValueError, match="even"):
        YuvPlanes(np.zeros((15, 11), np.uint8), 11, 10, "itu601", 1)
    with pytest.raises(ValueError, match="needs its RGB"):
        Frame()
    planes = YuvPlanes(np.zeros((15, 10), np.uint8), 10, 10, "itu601", 1)
    with pytest.raises(ValueError, match="planes are 10x10"):
        Frame(np.zeros((8, 10, 3), np.uint8), planes=planes)


@needs_ffmpeg
def test_planes_reach_the_encoder_untouched(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=8)
    out = tmp_path / "out.mkv"
    with VideoSource(str(clip), planar=True) as source:
        with EncoderSink(out, source.info, settings=EncoderSettings(crf=0)) as sink:
            for item in source:
                if isinstance(item, Frame):
                    sink.write_frame(item)
    assert _ffmpeg_i420(out) == _ffmpeg_i420(clip)  # lossless: the decoder's planes, no RGB round trip


def test_planar_exponent_of_grey_is_the_exponent_of_luma():
    rng = np.random.default_rng(0)
    grey = np.repeat(rng.integers(0, 256, (48, 64, 1), dtype=np.uint8), 3, axis=2)
    for color_range, (black, span) in ((1, (16, 219)), (2, (0, 255))):
        planes = _to_planes(grey, color_range=color_range)
        gamma = torch.full((1, 3, 6, 8), 0.45)
        out = _planar_gamma(planes, Curve.fit(gamma, gamma, fraction=0.0))
        y_in, u_in, v_in = (p.astype(np.float64) for p in planes.split())
        y_out, u_out, v_out = (p.astype(np.float64) for p in out.split())
        expected = black + span * np.clip((y_in - black) / span, 1e-4, 1.0) ** 0.45
        assert np.abs(y_out - expected).max() <= 1.0
        assert np.abs(u_out - 128).max() <= 1 and np.abs(v_out - 128).max() <= 1  # grey stays grey


@pytest.mark.parametrize("matrix", ["itu601", "itu709"])
def test_planar_exponent_of_colours_matches_the_rgb_exponent(matrix):
    """Per-channel γ on flat patches of random dim colours: the planes come back as the RGB
    exponent's (luma from one mixed exponent and its correction, chroma exact at its size),
    compared in the middle of the patches (4:2:0 blends chroma across their edges)."""
    rng = np.random.default_rng(1)
    patches = rng.integers(5, 170, (6, 8, 3), dtype=np.uint8)
    rgb = np.repeat(np.repeat(patches, 8, axis=0), 8, axis=1)  # 48×64, 8×8 patches
    planes = _to_planes(rgb, matrix=matrix)
    gamma = torch.tensor([0.35, 0.55, 0.8]).view(1, 3, 1, 1).expand(1, 3, 6, 8).contiguous()
    out = _planar_gamma(planes, Curve.fit(gamma, gamma, fraction=0.0))
    # the oracle: the BT.601/709 equations per pixel (chroma of its 2×2 block), in float64
    y, u, v = (p.astype(np.float64) for p in planes.split())
    cb, cr = ((np.repeat(np.repeat(c, 2, axis=0), 2, axis=1) - 128) / 224 for c in (u, v))
    kr, kb = {"itu601": (0.299, 0.114), "itu709": (0.2126, 0.0722)}[matrix]
    y = (y - 16) / 219
    red, blue = y + (2 - 2 * kr) * cr, y + (2 - 2 * kb) * cb
    green = (y - kr * red - kb * blue) / (1 - kr - kb)
    out_rgb = np.clip(np.stack([red, green, blue], axis=-1), 1e-4, 1) ** np.array([0.35, 0.55, 0.8])
    luma = kr * out_rgb[..., 0] + (1 - kr - kb) * out_rgb[..., 1] + kb * out_rgb[..., 2]
    expected = (
        16 + 219 * luma,
        (128 + 224 * (out_rgb[..., 2] - luma) / (2 - 2 * kb))[::2, ::2],
        (128 + 224 * (out_rgb[..., 0] - luma) / (2 - 2 * kr))[::2, ::2],
    )
    for got, want in zip(out.split(), expected, strict=True):
        # the samples whose neighbourhood lies inside their patch: the 2×2 centre of each
        patch = got.shape[0] // 6  # 8 for luma, 4 for chroma
        tile = np.zeros((patch, patch), bool)
        tile[patch // 2 - 1 : patch // 2 + 1, patch // 2 - 1 : patch // 2 + 1] = True
        diff = np.abs(got - want)[np.tile(tile, (6, 8))]
        assert diff.max() <= 0.75, (diff.mean(), diff.max())  # rounding to whole code values


def _darkened(clean: np.ndarray, generator: torch.Generator, light: tuple[float, float]) -> np.ndarray:
    x = torch.from_numpy((clean * 255).round().astype(np.uint8)).permute(2, 0, 1).float() / 255
    dark = darken(x, sample_darken_params(generator, light=light), generator=generator)
    return (dark.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


def _scores(rgb: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    y = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    reference = torch.from_numpy(clean).permute(2, 0, 1)[None]
    return float(psnr(y, reference)), float(ssim(y, reference))


@pytest.mark.parametrize("light", [DAY_LIGHT, NIGHT_LIGHT], ids=["dusk", "night"])
def test_planar_path_quality_within_tolerance_with_the_default_settings(light):
    """4:2:0 in, 4:2:0 out, the default weights and settings (noise reduction, exposure decision,
    guided upsampling; for the clip the temporal state): the planar path costs at most 0.1 dB
    PSNR and 0.002 SSIM against the float path given the same planes."""
    size = (240, 136)
    scenes = [street_scene(i, size=size, rate=30) for i in range(0, 48, 4)]
    generator = torch.Generator().manual_seed(1)
    stills = [_to_planes(_darkened(clean, generator, light)) for clean in scenes]
    clip_clean = [street_scene(i, size=size, rate=30) for i in range(24)]
    clip = [_to_planes(_darkened(c, torch.Generator().manual_seed(i), light)) for i, c in enumerate(clip_clean)]
    scores = {}
    for planar in (True, False):
        stage = (CpuStage if planar else ReferenceStage)(load_enhancer("default"))

        def run(planes: YuvPlanes, stage: CpuStage = stage, planar: bool = planar) -> np.ndarray:
            if planar:
                out = stage(Frame(planes=planes))
                assert out.planes is not None
                return _to_rgb(out.planes)
            return _to_rgb(_to_planes(stage(Frame(_to_rgb(planes))).rgb))

        stage.configure(stage.settings, temporal=False)
        on_stills = [_scores(run(d), c) for d, c in zip(stills, scenes, strict=True)]
        stage.configure(stage.settings)
        on_clip = [_scores(run(d), c) for d, c in zip(clip, clip_clean, strict=True)]
        scores[planar] = np.mean(on_stills, axis=0), np.mean(on_clip, axis=0)
    for planar_scores, float_scores in zip(scores[True], scores[False], strict=True):
        assert planar_scores[0] >= float_scores[0] - 0.1, (planar_scores, float_scores)
        assert planar_scores[1] >= float_scores[1] - 0.002, (planar_scores, float_scores)


def test_a_size_that_is_not_a_multiple_of_the_scale_is_estimated_as_the_float_path_does():
    """320×180 at scale 8: the last row of the thumbnail's blocks holds 4 rows; averaged as the
    float path's avg_pool, a frame on the gate's ramp gets the float path's decision."""
    clean = street_scene(10, size=(320, 180), rate=30)  # float RGB in [0, 1]
    planes = _to_planes(_darkened(clean, torch.Generator().manual_seed(0), DAY_LIGHT))
    fast, slow = CpuStage(load_enhancer("default")), ReferenceStage(load_enhancer("default"))
    for stage in (fast, slow):
        stage.configure(stage.settings, temporal=False)
    planar = _scores(_to_rgb(fast(Frame(planes=planes)).planes), clean)
    reference = _scores(_to_rgb(_to_planes(slow(Frame(_to_rgb(planes))).rgb)), clean)
    assert planar[0] >= reference[0] - 0.1 and planar[1] >= reference[1] - 0.002, (planar, reference)


def test_daylight_planes_pass_through_untouched():
    bright = (street_scene(0, size=(160, 96), rate=30) * 255).round().astype(np.uint8)
    planes = _to_planes(bright)
    out = CpuStage(load_enhancer("default"))(Frame(planes=planes))
    assert out.planes is planes


def test_temporal_filter_on_planes_lowers_the_noise_of_a_still_scene():
    rng = np.random.default_rng(0)
    base = (street_scene(0, size=(160, 96), rate=30) * 80).round()
    planes = [_to_planes(np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)) for _ in range(12)]
    denoiser = TemporalDenoiser(0.6)
    for frame in planes:
        y, u, v = frame.split()
        noise = noise_level_plane(y)
        out = denoiser.filter_planes((y, u, v), noise=noise * 255 / 219, matrix="itu601", color_range=1)
    assert out[0].dtype == np.float32 and out[1].shape == u.shape
    assert noise_level_plane(out[0]) < 0.7 * noise


@needs_ffmpeg
def test_enhance_writes_the_planar_result_and_matches_the_rgb_path(tmp_path):
    clip = make_clip(tmp_path / "dark.mp4", frames=12, brightness=0.25)
    main(["enhance", str(clip), "-o", str(tmp_path / "out.mkv"), "--crf", "0", "--quiet"])
    planar = _ffmpeg_i420(tmp_path / "out.mkv")
    stage = CpuStage(load_enhancer("default"))
    stage.planar = False  # the same stage, fed RGB
    run_video_job(Job("video", str(clip), tmp_path / "rgb.mkv"), stage, settings=EncoderSettings(crf=0))
    rgb = _ffmpeg_i420(tmp_path / "rgb.mkv")
    source = _ffmpeg_i420(clip)
    assert len(planar) == len(rgb) == len(source)
    a, b, x = (np.frombuffer(raw, np.uint8).astype(int) for raw in (planar, rgb, source))
    assert (a - x).mean() > 10  # enhanced: brighter than the input
    # and as the RGB path enhances it (to within 1 %; the frame is lifted threefold, and the
    # rounding of 4:2:0 planes against RGB grows with the lift)
    assert abs(a.mean() - b.mean()) < 0.01 * a.mean() and np.abs(a - b).mean() < 3.0

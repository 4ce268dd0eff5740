"""The enhance stage: the 8-bit CPU path matches the float path (within 0.1 dB and 0.002 SSIM)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from sagc.core.synth import DAY_LIGHT, NIGHT_LIGHT, darken, sample_darken_params
from sagc.eval.metrics import psnr, ssim
from sagc.models import load_enhancer
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.enhance.reference import ReferenceStage
from sagc.stream.media.demo import street_scene
from sagc.stream.media.frame import Frame


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("scale,gain", [(1.0, 1.0), (4.0, 1.0), (3.0, 1.5), (8.0, 1.0)])
def test_fast_path_matches_float_path(weights, scale, gain):
    clean = (street_scene(10, size=(321, 181), rate=30) * 255).round().astype(np.uint8)
    g = torch.Generator().manual_seed(0)
    dark_t = darken(_to_tensor(clean), sample_darken_params(g), generator=g)
    dark = (dark_t[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    enhancer = load_enhancer(weights, scale=scale, gain=gain)
    fast = CpuStage(enhancer)(Frame(dark)).rgb
    slow = ReferenceStage(load_enhancer(weights, scale=scale, gain=gain))(Frame(dark)).rgb
    assert fast.shape == slow.shape == clean.shape and fast.dtype == np.uint8
    reference = _to_tensor(clean)
    gap = float(psnr(_to_tensor(fast), reference) - psnr(_to_tensor(slow), reference))
    assert abs(gap) <= 0.1
    assert float(psnr(_to_tensor(fast), _to_tensor(slow))) > 40


def test_16bit_frames_use_the_float_path(weights):
    frame = Frame((np.random.default_rng(0).random((20, 30, 3)) * 9000).astype(np.uint16))
    out = CpuStage(load_enhancer(weights))(frame)
    assert out.rgb.dtype == np.uint16 and (out.rgb.astype(int) >= frame.rgb.astype(int) - 1).all()


def _darkened(clean: np.ndarray, generator: torch.Generator, light: tuple[float, float]) -> np.ndarray:
    params = sample_darken_params(generator, light=light)
    dark = darken(_to_tensor((clean * 255).round().astype(np.uint8))[0], params, generator=generator)
    return (dark.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


@pytest.mark.parametrize("light", [DAY_LIGHT, NIGHT_LIGHT], ids=["dusk", "night"])
def test_fast_path_quality_within_tolerance_with_the_default_settings(light):
    """The default weights and run-time settings (noise reduction, exposure decision, guided
    upsampling, and for video the temporal state): the 8-bit path within 0.1 dB PSNR and 0.002
    SSIM of the float path, on stills and on a clip."""
    size = (240, 136)
    scenes = [street_scene(i, size=size, rate=30) for i in range(0, 48, 4)]
    generator = torch.Generator().manual_seed(1)
    stills = [_darkened(clean, generator, light) for clean in scenes]
    clip_clean = [street_scene(i, size=size, rate=30) for i in range(24)]
    clip = [_darkened(clean, torch.Generator().manual_seed(i), light) for i, clean in enumerate(clip_clean)]
    scores = {}
    for fast in (True, False):
        stage = (CpuStage if fast else ReferenceStage)(load_enhancer("default"))
        stage.configure(stage.settings, temporal=False)
        on_stills = [_scores(stage(Frame(d)).rgb, c) for d, c in zip(stills, scenes, strict=True)]
        stage.configure(stage.settings)  # video: exposure tracking, temporal noise reduction
        on_clip = [_scores(stage(Frame(d)).rgb, c) for d, c in zip(clip, clip_clean, strict=True)]
        scores[fast] = np.mean(on_stills, axis=0), np.mean(on_clip, axis=0)
    for fast_scores, float_scores in zip(scores[True], scores[False], strict=True):
        assert abs(fast_scores[0] - float_scores[0]) <= 0.1, (fast_scores, float_scores)
        assert abs(fast_scores[1] - float_scores[1]) <= 0.002, (fast_scores, float_scores)


def _scores(out: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    y, reference = _to_tensor(out), torch.from_numpy(clean).permute(2, 0, 1)[None]
    return float(psnr(y, reference)), float(ssim(y, reference))


def _count_estimates(stage: CpuStage) -> list[str]:
    """A list that grows by the name of the thread that ran it on every estimate the stage runs
    (the real estimate still runs)."""
    estimates: list[str] = []
    real = stage._gamma
    stage._gamma = lambda x, **kw: estimates.append(threading.current_thread().name) or real(x, **kw)
    return estimates


def test_video_reuses_a_still_estimate_and_decides_every_moving_frame():
    """A still dark street reuses the whole estimate while the light holds; a pan over it is
    decided on every frame (held for a frame or two, its exposure would move in a sawtooth
    against the input's); a frame whose light changed re-estimates at once; the outputs stay
    close to estimating every frame as unrelated stills."""
    from sagc.stream.enhance.reuse import REUSE_FRAMES

    scene = (street_scene(0, size=(400, 180), rate=30) * 70).round().astype(np.uint8)
    stage = CpuStage(load_enhancer("default"), overlap=False)  # the schedule, frame by frame
    estimates = _count_estimates(stage)
    still = np.ascontiguousarray(scene[:, :240])
    for _ in range(REUSE_FRAMES + 2):
        stage(Frame(still))
    assert len(estimates) == 2  # the first frame, and again after REUSE_FRAMES frames held it
    estimates.clear()
    pan = [np.ascontiguousarray(scene[:, 4 * t : 4 * t + 240]) for t in range(1, 11)]
    outputs = [stage(Frame(rgb)).rgb for rgb in pan]
    assert len(estimates) == len(pan)
    every = CpuStage(load_enhancer("default"))
    every.configure(every.settings, temporal=False)  # each frame estimated
    fresh = [every(Frame(rgb)).rgb for rgb in pan]
    assert np.mean([float(psnr(_to_tensor(a), _to_tensor(b))) for a, b in zip(outputs, fresh, strict=True)]) > 35
    estimates.clear()
    stage(Frame(pan[-1]))  # the same picture in the same light: reused
    stage(Frame((pan[-1] * 0.5).astype(np.uint8)))  # the light halved: estimated again
    assert len(estimates) == 1


def test_a_pan_runs_the_network_on_a_schedule_and_decides_the_exposure_every_estimate(monkeypatch):
    """A still scene whose light rises 0.7 % a frame is estimated on every frame (more than
    REUSE_MEAN) but reuses the network's γ for REUSE_NETWORK_FRAMES frames (within
    REUSE_NETWORK_MEAN); the exposure decision is still made on each frame, so the output stays
    close to running the network every time; a larger change of light runs the network at once."""
    from sagc.stream.enhance import reuse

    scene = street_scene(0, size=(240, 180), rate=30) * 70
    pan = [np.clip(scene * 1.007**t, 0, 255).round().astype(np.uint8) for t in range(12)]
    stage = CpuStage(load_enhancer("default"), overlap=False)  # the schedule, frame by frame
    estimates: list[int] = []  # the frames estimated, and those the network ran on
    runs: list[int] = []
    outputs: list[np.ndarray] = []
    decide, network = stage._gamma, stage._runtime
    stage._gamma = lambda x, **kw: estimates.append(len(outputs)) or decide(x, **kw)
    stage._runtime = lambda x: runs.append(len(outputs)) or network(x)
    for rgb in pan:
        outputs.append(stage(Frame(rgb)).rgb)
    assert set(runs) <= set(estimates) and 0 in runs and len(runs) < len(estimates)
    for index in estimates:  # an estimate that held the network's γ is at most REUSE_NETWORK_FRAMES after it ran
        assert index in runs or index - max(run for run in runs if run < index) <= reuse.REUSE_NETWORK_FRAMES
    with monkeypatch.context() as patch:
        patch.setattr(reuse, "REUSE_NETWORK_FRAMES", -1)  # the same video stage, the network on each estimate
        every = CpuStage(load_enhancer("default"))
        fresh = [every(Frame(rgb)).rgb for rgb in pan]
    assert min(float(psnr(_to_tensor(a), _to_tensor(b))) for a, b in zip(outputs, fresh, strict=True)) > 35
    runs.clear()
    stage(Frame((pan[-1] * 0.6).astype(np.uint8)))  # the light fell: the network runs again
    assert len(runs) == 1


def test_a_fading_light_is_estimated_on_every_frame():
    """A still dark scene whose light falls 1 % a frame moves each thumbnail pixel by under a
    level (the still test alone would reuse it), but its mean by more than REUSE_MEAN."""
    base = street_scene(0, size=(240, 136), rate=30) * 60
    fade = [np.clip(base * 0.99**k, 0, 255).round().astype(np.uint8) for k in range(8)]
    stage = CpuStage(load_enhancer("default"), overlap=False)  # the schedule, frame by frame
    estimates = _count_estimates(stage)
    for rgb in fade:
        stage(Frame(rgb))
    assert len(estimates) == len(fade)


def test_video_reuses_the_estimate_while_the_picture_stays_put():
    """A still scene with fresh noise every frame is estimated once per REUSE_FRAMES + 1 frames;
    a change re-estimates at once; stills and new settings never reuse."""
    from sagc.stream.enhance.reuse import REUSE_FRAMES

    rng = np.random.default_rng(0)
    base = (street_scene(0, size=(240, 136), rate=30) * 60).astype(np.float32)  # a dark street
    noisy = [np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8) for _ in range(40)]
    stage = CpuStage(load_enhancer("default"), overlap=False)  # the schedule, frame by frame
    estimates = _count_estimates(stage)
    outputs = [stage(Frame(rgb)).rgb for rgb in noisy]
    assert len(estimates) == -(-len(noisy) // (REUSE_FRAMES + 1))
    reference = CpuStage(load_enhancer("default"))
    fresh = [reference(Frame(rgb)).rgb for rgb in noisy]
    assert all(float(psnr(_to_tensor(a), _to_tensor(b))) > 40 for a, b in zip(outputs, fresh, strict=True))
    estimates.clear()
    changed = noisy[0].copy()
    changed[40:80, 60:120] = 200  # something lit up
    stage(Frame(changed))
    assert len(estimates) == 1
    stage.configure(stage.settings.replace(ev=0.5))
    stage(Frame(changed))
    assert len(estimates) == 2  # γ depends on the settings
    stage.configure(stage.settings, temporal=False)  # stills: each estimated
    for rgb in noisy[:3]:
        stage(Frame(rgb))
    assert len(estimates) == 5


def test_the_cpu_stage_runs_its_8bit_estimate_on_onnx_runtime():
    from sagc.ops.estimator import OrtEstimator

    stage, enhancer = CpuStage(load_enhancer("default")), load_enhancer("default")
    x = torch.rand(1, 3, 45, 80)
    assert isinstance(stage._runtime, OrtEstimator)
    with torch.inference_mode():
        gamma_fast, _, _ = stage._gamma(x, night=float(enhancer.exposure_gate.nightness(x)[0]))
        gamma_slow, _, _ = enhancer.gamma(x)
    assert float((gamma_fast - gamma_slow).abs().max()) < 1e-5


def test_stages_declare_what_they_can_do():
    from sagc.stream.enhance.cuda_stage import CudaStage

    assert CpuStage.planar and CpuStage.reuses_estimates
    assert not ReferenceStage.planar and not ReferenceStage.reuses_estimates
    assert not CudaStage.planar and not CudaStage.reuses_estimates


def test_the_reference_stage_is_the_enhancer_in_floating_point():
    rgb = np.random.default_rng(7).integers(0, 90, (48, 64, 3), dtype=np.uint8)
    enhancer = load_enhancer("default")
    with torch.inference_mode():
        want = enhancer(_to_tensor(rgb))
    got = ReferenceStage(load_enhancer("default"))(Frame(rgb)).rgb
    want = (want[0].permute(1, 2, 0) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    diff = np.abs(got.astype(int) - want.astype(int))  # (channels_last convolutions sum in another order)
    assert diff.max() <= 1 and diff.mean() < 0.01
    with pytest.raises(ValueError, match="CPU"):
        CpuStage(load_enhancer("default"), device="meta")


@pytest.mark.parametrize("planar", [False, True], ids=["rgb", "4:2:0"])
def test_overlap_estimates_on_a_worker_one_frame_ahead(planar):
    """With ``overlap`` (live preview) the first frame estimates on the caller's thread and every
    later estimate on the stage's worker, beside the full-resolution work of the frame it was
    made from, which takes the last estimate: as many estimates as the serial stage, and in a
    steady light the outputs, one estimate late, match it closely."""
    from sagc.stream.media.frame import YuvPlanes

    scene = (street_scene(0, size=(400, 180), rate=30) * 70).round().astype(np.uint8)
    rng = np.random.default_rng(0)
    pan = [
        np.clip(scene[:, 4 * t : 4 * t + 240] + rng.normal(0, 2, (180, 240, 3)), 0, 255).astype(np.uint8)
        for t in range(9)
    ]

    def frame(rgb: np.ndarray) -> Frame:
        return Frame(planes=YuvPlanes.from_rgb(rgb)) if planar else Frame(rgb)

    def output(out: Frame) -> np.ndarray:
        return out.planes.to_rgb(accurate=True) if planar else out.rgb

    threads: dict[str, list[str]] = {}
    outputs: dict[str, list[np.ndarray]] = {}
    for name in ("serial", "overlap"):
        stage = CpuStage(load_enhancer("default"), overlap=name == "overlap")
        threads[name] = _count_estimates(stage)
        outputs[name] = [output(stage(frame(rgb))) for rgb in pan]
        stage.close()
    assert threads["serial"] and all(name == threading.current_thread().name for name in threads["serial"])
    workers = [name for name in threads["overlap"] if name.startswith("sagc-estimate")]
    assert len(threads["overlap"]) == len(threads["serial"]) and len(workers) == len(threads["overlap"]) - 1
    pairs = zip(outputs["overlap"], outputs["serial"], strict=True)
    scores = [float(psnr(_to_tensor(a), _to_tensor(b))) for a, b in pairs]
    assert min(scores) > 40, scores


def test_overlap_output_does_not_depend_on_the_workers_speed_and_a_scene_cut_estimates_in_place():
    """The frame that starts an estimate on the worker takes the last one and the next frame
    waits for the worker's, so a slow worker changes nothing in the output; a scene cut
    estimates on the caller's thread and comes out as the serial stage makes it."""
    scene = (street_scene(0, size=(400, 180), rate=30) * 70).round().astype(np.uint8)
    pan = [np.ascontiguousarray(scene[:, 8 * t : 8 * t + 240]) for t in range(8)]
    other = (street_scene(40, size=(240, 180), rate=30) * 255).round().astype(np.uint8)  # bright: another scene
    outputs, started = {}, {}
    for speed in ("fast", "slow"):
        stage = CpuStage(load_enhancer("default"), overlap=True)
        real = stage._gamma

        def slowed(x: torch.Tensor, real=real, speed=speed, **kw: object) -> object:
            if speed == "slow" and threading.current_thread().name.startswith("sagc-estimate"):
                time.sleep(0.05)
            return real(x, **kw)

        stage._gamma = slowed
        estimates = _count_estimates(stage)
        outputs[speed], started[speed] = [], []
        for rgb in [*pan, other]:
            outputs[speed].append(stage(Frame(rgb)).rgb)
            started[speed].append(stage._ahead is not None)
        stage.close()
        assert estimates[0] == estimates[-1] == threading.current_thread().name  # the first frame, the cut
        assert sum(name.startswith("sagc-estimate") for name in estimates) == sum(started[speed]) > 0
    assert started["fast"] == started["slow"]
    for fast, slow in zip(outputs["fast"], outputs["slow"], strict=True):
        np.testing.assert_array_equal(fast, slow)
    serial = CpuStage(load_enhancer("default"), overlap=False)
    for rgb in pan:
        serial(Frame(rgb))
    np.testing.assert_array_equal(outputs["fast"][-1], serial(Frame(other)).rgb)
    serial.close()

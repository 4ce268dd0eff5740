"""The CUDA path: pinned ring, streams and events. Runs only where a CUDA device exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sagc.models import load_enhancer
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.enhance.reference import ReferenceStage
from sagc.stream.enhance.stages import make_stage
from sagc.stream.media.frame import Frame
from sagc.stream.media.sources import VideoSource
from sagc.stream.run.pipeline import run_pipeline
from sagc.stream.run.threaded import run_pipeline_threaded

from .conftest import make_clip

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="no CUDA device here: CUDA path tests skipped (run them on a GPU machine)",
    ),
]


def _frames(count: int, height: int = 180, width: int = 320) -> list[Frame]:
    rng = np.random.default_rng(0)
    return [Frame((rng.random((height, width, 3)) ** 2 * 255).astype(np.uint8), i, index=i) for i in range(count)]


class _Collect:
    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def write_frame(self, frame: Frame) -> None:
        self.frames.append(frame.rgb.copy())

    def write_packet(self, packet: object) -> None:
        pass


def test_cuda_stage_matches_the_float_reference(weights: Path) -> None:
    from sagc.stream.enhance.cuda_stage import CudaStage

    cuda = CudaStage(load_enhancer(weights), device="cuda", dtype=torch.float32)
    reference = ReferenceStage(load_enhancer(weights), device="cpu")
    for frame in _frames(6):
        got = cuda(frame).rgb.astype(int)
        want = reference(frame).rgb.astype(int)
        assert np.abs(got - want).max() <= 1


def test_cuda_stage_denoises_like_opencv_on_the_cpu(weights: Path) -> None:
    from sagc.stream.enhance.cuda_stage import CudaStage

    cuda = CudaStage(load_enhancer(weights, denoise=4), device="cuda", dtype=torch.float32)
    fast_cpu = CpuStage(load_enhancer(weights, denoise=4), device="cpu")  # OpenCV's filter
    for frame in _frames(3):
        diff = np.abs(cuda(frame).rgb.astype(int) - fast_cpu(frame).rgb.astype(int))
        assert diff.mean() < 0.5 and diff.max() <= 4


def test_fp16_default_stays_close(weights: Path) -> None:
    stage = make_stage(load_enhancer(weights), device="cuda")
    reference = ReferenceStage(load_enhancer(weights), device="cpu")
    frame = _frames(1)[0]
    diff = np.abs(stage(frame).rgb.astype(int) - reference(frame).rgb.astype(int))
    assert diff.mean() < 1.0 and diff.max() <= 8


def test_ring_is_pinned_and_nothing_is_allocated_per_frame(weights: Path) -> None:
    from sagc.stream.enhance.cuda_stage import CudaStage

    stage = CudaStage(load_enhancer(weights), device="cuda")
    frames = _frames(60)
    pending = [stage.submit(f) for f in frames[:3]]
    for p in pending:
        p.result()
    assert all(slot.host_in.is_pinned() and slot.host_out.is_pinned() for slot in stage._ring)
    torch.cuda.synchronize()
    before = torch.cuda.memory_stats()["segment.all.allocated"]
    window = []
    for frame in frames[3:]:
        window.append(stage.submit(frame))
        if len(window) == stage.slots:
            window.pop(0).result()
    for p in window:
        p.result()
    torch.cuda.synchronize()
    assert torch.cuda.memory_stats()["segment.all.allocated"] == before


def test_threaded_pipeline_with_cuda_stage_equals_sequential(tmp_path: Path, weights: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", frames=20)
    outputs = []
    for runner in (run_pipeline, run_pipeline_threaded):
        stage = make_stage(load_enhancer(weights), device="cuda")
        sink = _Collect()
        with VideoSource(str(clip)) as source:
            runner(source, stage, sink)
        outputs.append(sink.frames)
    assert len(outputs[0]) == len(outputs[1]) == 20
    for a, b in zip(*outputs, strict=True):  # same kernels; allow cuDNN's last-bit freedom
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_sixteen_bit_frames_take_the_float_path(weights: Path) -> None:
    stage = make_stage(load_enhancer(weights), device="cuda")
    frame = Frame((np.random.default_rng(1).random((64, 96, 3)) * 65535).astype(np.uint16))
    out = stage(frame)
    assert out.rgb.dtype == np.uint16 and out.rgb.shape == frame.rgb.shape


def test_cuda_stage_refuses_a_cpu_device(weights: Path) -> None:
    from sagc.stream.enhance.cuda_stage import CudaStage

    with pytest.raises(ValueError, match="needs a CUDA device"):
        CudaStage(load_enhancer(weights), device="cpu")


def test_graph_replay_equals_eager_kernels(weights: Path) -> None:
    from sagc.stream.enhance.cuda_stage import CudaStage

    frames = _frames(5)
    outputs = []
    for graphs in (True, False):
        stage = CudaStage(load_enhancer(weights, denoise=4), device="cuda", graphs=graphs)
        outputs.append([stage(f).rgb for f in frames])
        assert all((slot.graph is not None) == graphs for slot in stage._ring)
    for replayed, eager in zip(*outputs, strict=True):
        assert np.abs(replayed.astype(int) - eager.astype(int)).max() <= 1


def test_graphs_follow_the_denoise_toggle_and_the_smoother(weights: Path) -> None:
    from sagc.stream.enhance.cuda_stage import CudaStage

    frame = _frames(1)[0]
    stage = CudaStage(load_enhancer(weights, denoise=4), device="cuda")
    filtered = stage(frame).rgb
    stage.configure(stage.settings.replace(denoise=0.0))  # what the preview's toggle does
    plain = stage(frame).rgb
    fresh = CudaStage(load_enhancer(weights, denoise=0), device="cuda", graphs=False)
    assert np.abs(plain.astype(int) - fresh(frame).rgb.astype(int)).max() <= 1
    assert np.abs(plain.astype(int) - filtered.astype(int)).mean() > 0.1  # the filter did act
    stage.configure(stage.settings.replace(smooth=0.8))  # eager while smoothing; the first frame is unsmoothed
    assert np.abs(stage(frame).rgb.astype(int) - plain.astype(int)).max() <= 1


def test_nvdec_decodes_like_the_cpu_decoder(tmp_path: Path) -> None:
    from sagc.core.errors import SagcError
    from sagc.stream.media.sources import Decoding

    clip = make_clip(tmp_path / "c.mp4", size=(320, 192), frames=12)
    try:
        source = VideoSource(str(clip), decoding=Decoding("cuda", required=True))
    except SagcError as exc:
        pytest.skip(f"NVDEC is not available on this GPU machine: {exc}")
    with source:
        got = [f.rgb for f in source if isinstance(f, Frame)]
        assert source.hardware and source.info.pix_fmt == "yuv420p"
    with VideoSource(str(clip)) as software:
        want = [f.rgb for f in software if isinstance(f, Frame)]
    assert len(got) == len(want) == 12
    for a, b in zip(got, want, strict=True):  # same pictures, same conversion (nv12 → yuv420p first)
        assert np.array_equal(a, b)


def test_cuda_stage_applies_the_exposure_gate_like_the_cpu(weights: Path) -> None:
    from sagc.stream.enhance.cuda_stage import CudaStage

    height, width = 48, 64
    rgb = np.full((height, width, 3), 55, np.uint8)  # dark: enhanced fully
    bright = np.full((height, width, 3), 90, np.uint8)
    bright[:8] = 255  # mean luma about 0.5 with highlights: left alone
    for picture in (rgb, bright):
        frame = Frame(picture)
        cuda = CudaStage(load_enhancer(weights, gate=True, denoise=4), device="cuda", dtype=torch.float32)
        reference = ReferenceStage(load_enhancer(weights, gate=True, denoise=4), device="cpu")
        got, want = cuda(frame).rgb.astype(int), reference(frame).rgb.astype(int)
        assert np.abs(got - want).max() <= 1
    assert np.array_equal(cuda(Frame(bright)).rgb, bright)


def test_cuda_stage_guides_like_the_cpu_and_follows_the_toggle() -> None:
    from sagc.stream.enhance.cuda_stage import CudaStage

    frame = _frames(1)[0]
    frame = frame.with_pixels((frame.rgb // 4).astype(np.uint8))  # dark: the exposure gate enhances it
    # the trained default: its γ follows brightness, so the guided upsampling changes the picture
    cuda = CudaStage(load_enhancer("default", guide=0.5), device="cuda", dtype=torch.float32)
    reference = ReferenceStage(load_enhancer("default", guide=0.5), device="cpu")
    guided = cuda(frame).rgb
    assert np.abs(guided.astype(int) - reference(frame).rgb.astype(int)).max() <= 1
    cuda.configure(cuda.settings.replace(guide=0.0))  # the graphs are captured again for the new setting
    plain = cuda(frame).rgb
    want = ReferenceStage(load_enhancer("default", guide=0.0), device="cpu")(frame).rgb
    assert np.abs(plain.astype(int) - want.astype(int)).max() <= 1
    assert np.abs(plain.astype(int) - guided.astype(int)).max() > 3

"""Throughput benchmark: decode-only, pass-through transcode, enhance stage, estimator, end to end,
and live-mode latency (the preview loop on the input paced at its frame rate).

Everything is measured in one run on the same input so the ratios are meaningful on a noisy
machine: end-to-end enhance vs. a pass-through transcode with the same encoder settings (a
plain transcode: 8-bit 4:2:0 frames go from the decoder to the encoder without RGB).
Clocks are read after ``torch.cuda.synchronize()`` on CUDA; warm-up frames are excluded.
"""

from __future__ import annotations

import collections
import itertools
import os
import resource
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import torch

from sagc.core.errors import SagcError
from sagc.core.timing import StepTimer, percentiles
from sagc.stream.apps.ffmpeg_chain import time_ffmpeg
from sagc.stream.apps.live import LiveCapture, parse_live_source
from sagc.stream.apps.preview import PreviewSession
from sagc.stream.enhance.stage import FrameStage, Stage, Ticket, as_frame_stage
from sagc.stream.media.frame import Frame
from sagc.stream.media.sinks import EncoderSettings, EncoderSink
from sagc.stream.media.sources import Decoding, VideoSource
from sagc.stream.run.threaded import run_pipeline_threaded

__all__ = ["MIN_FRAMES", "BenchResult", "run_bench", "synthetic_spec"]

_WARMUP = 5
MIN_FRAMES = 2 * _WARMUP  # warm-up plus as many timed frames
_STAGE_FRAMES = 65  # frames held in memory for the stage measurement (5 warm-up + 60 timed)
_LIVE_FRAMES = 90  # paced at the input's rate: 3 s at 30 fps
SYNTHETIC_LEVEL = 0.3  # brightness of the --synthetic pattern (mean luma about 0.14)


def synthetic_spec(text: str) -> str:
    """``WxH@FPS`` → a lavfi source of a *dark* moving test pattern (e.g. ``1280x720@30``):
    FFmpeg's testsrc2 at ``SYNTHETIC_LEVEL`` of its brightness, 4:2:0 like camera footage. Dark,
    because that is what sagc is for: the bright pattern would be judged well exposed by the
    exposure gate and skip most of the work."""
    try:
        size, rate = text.split("@")
        width, height = (int(v) for v in size.lower().split("x"))
        fps = float(rate)
    except ValueError as exc:
        raise ValueError(f"--synthetic wants WxH@FPS such as 1280x720@30, got {text!r}") from exc
    dim = ":".join(f"{c}=val*{SYNTHETIC_LEVEL:g}" for c in "rgb")
    return f"lavfi:testsrc2=size={width}x{height}:rate={fps:g},lutrgb={dim},format=yuv420p"


@dataclass
class BenchResult:
    """All figures of one benchmark run (frames/s unless named otherwise)."""

    input: str
    width: int
    height: int
    frames: int
    device: str
    decoder: str
    codec: str
    preset: str
    decode_fps: float
    passthrough_fps: float
    stage_fps: float
    estimator_fps: float
    enhance_fps: float
    ratio_enhance_to_passthrough: float
    stage_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    # where an end-to-end frame's milliseconds go, step by step (conversions, and on the CPU the
    # stage's downscale, estimate, noise reduction, upsample and apply)
    step_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    # the same steps in the enhance-stage run (the stage alone, no decoder or encoder beside it)
    stage_step_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    live_latency_ms: dict[str, float] = field(default_factory=dict)
    live_frames: int = 0
    live_dropped: int = 0
    peak_rss_mb: float = 0.0
    peak_gpu_mb: float | None = None
    # the run-time settings the figures were measured with (RuntimeSettings.as_dict)
    settings: dict[str, float | bool] = field(default_factory=dict)
    # with compare_ffmpeg: the ffmpeg program's plain transcode and FFMPEG_CHAIN, same encoder
    ffmpeg_version: str | None = None
    ffmpeg_plain_fps: float | None = None
    ffmpeg_chain_fps: float | None = None
    ratio_ffmpeg_chain_to_plain: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _frames_only(source: Iterable[Frame | av.Packet], limit: int) -> Iterator[Frame | av.Packet]:
    """The first ``limit`` frames (and the packets between them)."""
    count = 0
    for item in source:
        if isinstance(item, Frame):
            if count == limit:
                return
            count += 1
        yield item


class _Timed:
    """Wraps a callable or iterator and records how long each call / item took."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    def iterate(self, items: Iterable[Frame | av.Packet]) -> Iterator[Frame | av.Packet]:
        iterator = iter(items)
        while True:
            started = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                return
            if isinstance(item, Frame):
                self.samples.append(time.perf_counter() - started)
            yield item

    def call(self, stage: FrameStage | Callable[[Frame], Frame]) -> FrameStage:
        """``stage`` with the host time of each ``submit`` recorded (the whole enhancement on the
        CPU; the launch side on CUDA, whose device time overlaps the copies)."""
        return _TimedSubmit(as_frame_stage(stage), self.samples)


class _TimedSubmit:
    """Keeps a stage's ``submit`` (so the pipeline overlaps frames) and records its host time."""

    def __init__(self, stage: FrameStage, samples: list[float]) -> None:
        self.stage, self.samples = stage, samples

    def submit(self, frame: Frame) -> Ticket:
        started = time.perf_counter()
        out = self.stage.submit(frame)
        self.samples.append(time.perf_counter() - started)
        return out

    def cancel(self) -> None:
        self.stage.cancel()


class _TimedSink:
    def __init__(self, sink: EncoderSink, stamps: dict[int, float], latencies: list[float]) -> None:
        self.sink, self.stamps, self.latencies = sink, stamps, latencies
        self.timer = _Timed()

    def write_frame(self, frame: Frame) -> None:
        started = time.perf_counter()
        self.sink.write_frame(frame)
        now = time.perf_counter()
        self.timer.samples.append(now - started)
        if frame.index in self.stamps:
            self.latencies.append(now - self.stamps.pop(frame.index))

    def write_packet(self, packet: av.Packet) -> None:
        self.sink.write_packet(packet)


def _transcode(
    spec: str,
    frames: int,
    stage: Callable[[Frame], Frame],
    settings: EncoderSettings,
    device: torch.device,
    folder: Path,
    decoding: Decoding,
    steps: StepTimer | None = None,
    *,
    planar: bool,
) -> tuple[float, dict[str, dict[str, float]], list[float]]:
    """Decode → stage → encode ``frames`` frames through the threaded pipeline (4:2:0 frames as
    planes when ``planar``); ``steps`` (when given) times the conversions to and from RGB."""
    decode, enhance, stamps, latencies = _Timed(), _Timed(), {}, []
    with VideoSource(spec, decoding=decoding, planar=planar) as source:
        source.timer = steps
        with EncoderSink(folder / "bench.mp4", source.info, settings=settings) as encoder:
            encoder.timer = steps
            sink = _TimedSink(encoder, stamps, latencies)

            def stamped(items: Iterable[Frame | av.Packet]) -> Iterator[Frame | av.Packet]:
                for item in items:
                    if isinstance(item, Frame):
                        stamps[item.index] = time.perf_counter()
                    yield item

            started = time.perf_counter()
            result = run_pipeline_threaded(
                stamped(decode.iterate(_frames_only(source, frames))), enhance.call(stage), sink
            )
            encoder.close()
            seconds = time.perf_counter() - started
    stages = {
        "decode": percentiles(decode.samples[_WARMUP:]),
        "enhance": percentiles(enhance.samples[_WARMUP:]),
        "encode": percentiles(sink.timer.samples[_WARMUP:]),
    }
    return result.frames / seconds, stages, latencies[_WARMUP:]


def run_bench(
    spec: str,
    stage: Stage,
    *,
    frames: int = 300,
    settings: EncoderSettings = EncoderSettings(),
    decoding: Decoding = Decoding(),
    progress: Callable[[str], None] | None = None,
    compare_ffmpeg: bool = False,
) -> BenchResult:
    """Measure every figure of :class:`BenchResult` on the first ``frames`` frames of ``spec``
    (every decode of it, pass-through included, with ``decoding``); a shorter clip is measured
    on all it holds, and :attr:`BenchResult.frames` says how many were decoded. With
    ``compare_ffmpeg`` the ffmpeg program transcodes the same frames plainly and through
    :data:`~sagc.stream.apps.ffmpeg_chain.FFMPEG_CHAIN` in the same run."""
    device = stage.device
    say = progress or (lambda _message: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    say("decode only")
    with VideoSource(spec, decoding=decoding, planar=stage.planar) as source:
        info = source.info
        decoder = f"nvdec ({decoding.hardware})" if source.hardware else "cpu"
        started = time.perf_counter()
        decoded: list[Frame] = []
        count = 0
        for item in _frames_only(source, frames):
            if isinstance(item, Frame):
                count += 1
                if len(decoded) < _STAGE_FRAMES:  # kept for the stage measurement; the rest is dropped
                    decoded.append(item)
        decode_fps = count / (time.perf_counter() - started)
    if count < MIN_FRAMES:
        raise SagcError(
            f"{spec} has {count} video frames; sagc bench needs at least {MIN_FRAMES} "
            f"(the first {_WARMUP} of each measurement are warm-up): use a longer clip or --synthetic"
        )
    frames = count  # every figure below is measured on the frames the clip holds
    say("enhance stage and estimator")
    _run_stage(stage, decoded[:_WARMUP])
    _sync(device)
    alone = StepTimer()
    stage.timer = alone
    try:
        started = time.perf_counter()
        _run_stage(stage, decoded[_WARMUP:])
        _sync(device)
        stage_fps = max(1, len(decoded) - _WARMUP) / (time.perf_counter() - started)
    finally:
        stage.timer = None
    stage.reset()  # the end-to-end run starts the clip afresh
    estimator_fps = _estimator_fps(stage, info.height, info.width)
    del decoded
    with tempfile.TemporaryDirectory(prefix="sagc-bench-") as tmp:
        say("pass-through transcode")
        # a plain transcode: 4:2:0 frames go from the decoder to the encoder as they are
        passthrough_fps, _, _ = _transcode(
            spec, frames, lambda f: f, settings, device, Path(tmp), decoding, planar=True
        )
        say("end-to-end enhance")
        steps = StepTimer()
        stage.timer = steps
        try:
            enhance_fps, stages, latencies = _transcode(
                spec, frames, stage, settings, device, Path(tmp), decoding, steps, planar=stage.planar
            )
        finally:
            stage.timer = None
        ffmpeg = None
        if compare_ffmpeg:
            say("ffmpeg plain transcode and filter chain")
            ffmpeg = time_ffmpeg(spec, frames, settings, Path(tmp), codec=settings.codec or "libx264")
    say("live mode")
    live_latencies, live_dropped = _live_latency(spec, stage, min(frames, _LIVE_FRAMES))
    peak_gpu = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return BenchResult(
        input=spec,
        width=info.width,
        height=info.height,
        frames=frames,
        device=_describe(device),
        decoder=decoder,
        codec=settings.codec or "libx264",
        preset=settings.preset,
        decode_fps=round(decode_fps, 2),
        passthrough_fps=round(passthrough_fps, 2),
        stage_fps=round(stage_fps, 2),
        estimator_fps=round(estimator_fps, 2),
        enhance_fps=round(enhance_fps, 2),
        ratio_enhance_to_passthrough=round(enhance_fps / passthrough_fps, 3),
        stage_ms=stages,
        step_ms=steps.summary(skip=_WARMUP),
        stage_step_ms=alone.summary(),
        settings=stage.settings.as_dict(),
        latency_ms=percentiles(latencies),
        live_latency_ms=percentiles(live_latencies),
        live_frames=len(live_latencies) + _WARMUP,
        live_dropped=live_dropped,
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        peak_gpu_mb=None if peak_gpu is None else round(peak_gpu, 1),
        ffmpeg_version=None if ffmpeg is None else ffmpeg.version,
        ffmpeg_plain_fps=None if ffmpeg is None else round(ffmpeg.plain_fps, 2),
        ffmpeg_chain_fps=None if ffmpeg is None else round(ffmpeg.chain_fps, 2),
        ratio_ffmpeg_chain_to_plain=None if ffmpeg is None else round(ffmpeg.ratio, 3),
    )


def _run_stage(stage: Stage, frames: list[Frame]) -> None:
    """Every frame through the stage with up to ``stage.slots`` in flight, so on CUDA uploads,
    compute and downloads of neighbouring frames overlap as in the pipeline."""
    pending: collections.deque[Ticket] = collections.deque()
    for frame in frames:
        pending.append(stage.submit(frame))
        if len(pending) >= stage.slots:
            pending.popleft().result()
    while pending:
        pending.popleft().result()


def _live_latency(spec: str, stage: Stage, frames: int, *, overlap: bool = True) -> tuple[list[float], int]:
    """Preview mode on the input paced at its frame rate (the session's ``overlap``, as
    :class:`~sagc.stream.apps.preview.PreviewSession` has it): arrival → shown latencies, drops."""
    capture = LiveCapture(parse_live_source(spec), realtime=True, planar=stage.planar)
    settings = stage.settings
    stage.configure(settings.replace(smooth=0.0))
    try:
        with PreviewSession(capture, stage, max_frames=frames, overlap=overlap) as session:
            capture.wait_open()
            session.run()
    finally:
        stage.configure(settings)
        stage.reset()
    return session.latencies_all[_WARMUP:], capture.dropped


@torch.inference_mode()
def _estimator_fps(stage: Stage, height: int, width: int, *, runs: int = 50) -> float:
    """The estimator network alone on its low-resolution input (device-synchronised), run the
    way the stage runs it (replayed from a CUDA graph where the stage uses graphs)."""
    low_h, low_w = stage.enhancer.low_resolution_size(height, width)
    x = torch.rand(1, 3, low_h, low_w, device=stage.device, dtype=stage.dtype)
    run = stage.estimator_runner(x.contiguous(memory_format=torch.channels_last))
    for _ in range(_WARMUP):
        run()
    _sync(stage.device)
    started = time.perf_counter()
    for _ in itertools.repeat(None, runs):
        run()
    _sync(stage.device)
    return runs / (time.perf_counter() - started)


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"

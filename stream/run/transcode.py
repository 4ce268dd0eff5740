"""Run planned enhance jobs: video files through the pipeline, images one by one.

The job protocol (what a stage forgets and keeps around a job) lives here once:
:func:`enhance_video` resets the stage's temporal state before each video,
:func:`enhance_images` runs unrelated stills with nothing carried between them and gives the
stage its video settings back after them. ``sagc enhance`` and its Ray workers both call them.

Outputs are written under a unique ``.partial`` name (:func:`sagc.core.atomic.temporary_path`) and
published when complete; an interrupted video is flushed and closed so the partial file plays and
holds every frame written; a write that fails (disk full, file-size limit) leaves no file behind.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av.error

from sagc.core.atomic import publish, temporary_path
from sagc.core.errors import SagcError
from sagc.models import RuntimeSettings
from sagc.stream.enhance.stage import Stage
from sagc.stream.media.frame import DEFAULT_MAX_PIXELS, Frame
from sagc.stream.media.images import ImageSink, ImageSource
from sagc.stream.media.sinks import EncoderSettings, EncoderSink
from sagc.stream.media.sources import Decoding, VideoSource
from sagc.stream.run.jobs import Job, compare_path, written_paths
from sagc.stream.run.pipeline import PipelineResult, run_pipeline
from sagc.stream.run.threaded import run_pipeline_threaded

__all__ = ["JobResult", "TruncatedInput", "enhance_images", "enhance_video", "run_image_jobs", "run_video_job"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobResult:
    """What one job produced."""

    output: Path
    frames: int
    interrupted: bool = False
    compare: Path | None = None


class TruncatedInput(SagcError):
    """The input ended early or was corrupt part way: its readable part was written."""

    def __init__(self, job: Job, *, decoded: int, lost: int, dropped: int = 0) -> None:
        damaged = f", {dropped} damaged audio/subtitle packet(s) dropped" if dropped else ""
        super().__init__(
            f"{job.source} is truncated or corrupt: decoded {decoded} frames, {lost} "
            f"lost{damaged}; the readable part was written to {job.output}"
        )
        self.decoded, self.lost = decoded, lost


def run_video_job(
    job: Job,
    stage: Callable[[Frame], Frame],
    *,
    settings: EncoderSettings = EncoderSettings(),
    compare: bool = False,
    stop: threading.Event | None = None,
    on_start: Callable[[int | None], None] | None = None,
    on_frame: Callable[[Frame], None] | None = None,
    concurrent: bool = True,
    decoding: Decoding = Decoding(),
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    limit_flag: str | None = None,
) -> JobResult:
    """Decode ``job.source``, enhance every frame and encode it (audio/subtitles copied).

    ``concurrent`` runs decode, enhance and encode in their own threads; the output is the
    same as the sequential pipeline's. ``decoding`` may put the decoder on NVDEC. A
    :class:`~sagc.stream.enhance.stage.Stage` that works in 4:2:0 (:attr:`~sagc.stream.enhance.stage.Stage.planar`)
    gets 8-bit 4:2:0 frames as their planes, and an encoder of the same layout takes them as they are.

    Raises :class:`TruncatedInput` after writing the readable part when the input was truncated
    or corrupt, and (leaving no file) when the output cannot be written. On ``stop`` returns
    ``interrupted=True`` with the partial file's path. ``overwrite`` lets the finished file
    replace one that exists at the output by then; a picture larger than ``max_pixels`` is
    refused before it is decoded.
    """
    outputs = written_paths(job, compare=compare)
    planar = isinstance(stage, Stage) and stage.planar
    with VideoSource(
        job.source, decoding=decoding, max_pixels=max_pixels, planar=planar, limit_flag=limit_flag
    ) as source:
        info = source.info
        if on_start is not None:
            on_start(info.expected_frames)
        sinks: list[EncoderSink] = []
        temporary: list[Path] = []
        try:
            for i, final in enumerate(outputs):
                temporary.append(temporary_path(final))
                sinks.append(
                    EncoderSink(
                        final,
                        info,
                        settings=settings,
                        passthrough=source.passthrough_streams,
                        width=info.width * (2 if i else 1),
                        container_path=temporary[-1],
                    )
                )
            runner = run_pipeline_threaded if concurrent else run_pipeline
            result = runner(
                source,
                stage,
                sinks[0],
                compare=sinks[1] if compare else None,
                stop=stop,
                on_frame=on_frame,
            )
            for sink in sinks:
                sink.close()  # the final flush: a full disk shows here
        except BaseException as exc:
            for sink in sinks:
                _close_quietly(sink)
            for tmp in temporary:
                tmp.unlink(missing_ok=True)
            if isinstance(exc, (OSError, av.error.FFmpegError)):
                reason = getattr(exc, "strerror", None) or str(exc)
                raise SagcError(
                    f"could not write {job.output}: {reason}; nothing was kept (check free space and file-size limits)"
                ) from exc
            raise
        if result.interrupted:
            return JobResult(temporary[0], result.frames, interrupted=True)
        for tmp, final in zip(temporary, outputs, strict=True):
            publish(tmp, final, overwrite=overwrite)
        dropped = sinks[0].dropped_packets
        if source.lost_frames or dropped:
            raise TruncatedInput(job, decoded=source.decoded, lost=source.lost_frames, dropped=dropped)
        if result.frames == 0:
            raise SagcError(f"{job.source} has no video frames")
        return JobResult(job.output, result.frames, compare=outputs[1] if compare else None)


def _close_quietly(sink: EncoderSink) -> None:
    try:
        sink.close()
    except Exception as exc:  # the original error matters more than a failed flush
        log.debug("closing %s after an error failed: %s", sink.path, exc)


def run_image_jobs(
    jobs: Sequence[Job],
    stage: Callable[[Frame], Frame],
    *,
    compare: bool = False,
    stop: threading.Event | None = None,
    on_frame: Callable[[Frame], None] | None = None,
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    limit_flag: str | None = None,
) -> tuple[PipelineResult, list[str]]:
    """Enhance image files through the pipeline; returns the result and per-image failures."""
    source = ImageSource([job.source for job in jobs], max_pixels=max_pixels, limit_flag=limit_flag)
    sink = ImageSink([job.output for job in jobs], overwrite=overwrite)
    sides = ImageSink([compare_path(job.output) for job in jobs], overwrite=overwrite) if compare else None
    result = run_pipeline(source, stage, sink, compare=sides, stop=stop, on_frame=on_frame)
    return result, source.failures


def enhance_video(job: Job, stage: Stage, **options: Any) -> JobResult:
    """:func:`run_video_job` for a video of its own: the stage's temporal state is reset first."""
    stage.reset()
    return run_video_job(job, stage, **options)


def enhance_images(
    jobs: Sequence[Job], stage: Stage, *, settings: RuntimeSettings, **options: Any
) -> tuple[PipelineResult, list[str]]:
    """:func:`run_image_jobs` for unrelated stills: nothing carries over between them (no γ
    smoothing, exposure tracking or temporal noise reduction); the stage is configured with
    ``settings`` (the video settings) again afterwards."""
    stage.configure(settings, temporal=False)
    try:
        return run_image_jobs(jobs, stage, **options)
    finally:
        stage.configure(settings)

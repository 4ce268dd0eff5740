"""The sequential pipeline: source → enhance stage → sink(s), with a cooperative stop flag.

Stage boundaries are plain calls (``iter(source)``, ``stage(frame)``, ``sink.write_*``), so a
threaded pipeline (threaded.py) can put queues and threads between them without changing any stage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import av

from sagc.stream.media.frame import Frame, side_by_side

__all__ = ["FrameSink", "FrameWriter", "PipelineResult", "run_pipeline"]


class FrameSink(Protocol):
    """What the pipeline writes to."""

    def write_frame(self, frame: Frame) -> None: ...

    def write_packet(self, packet: av.Packet) -> None: ...


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """How far a run got."""

    frames: int
    packets: int
    interrupted: bool


class FrameWriter:
    """The writing end of every pipeline: an enhanced frame to ``sink`` (and ``input | output``
    to ``compare``), other packets to both, counted; ``on_frame`` hears of each frame written."""

    def __init__(
        self, sink: FrameSink, *, compare: FrameSink | None = None, on_frame: Callable[[Frame], None] | None = None
    ) -> None:
        self.sink, self.compare, self.on_frame = sink, compare, on_frame
        self.frames = self.packets = 0

    def frame(self, original: Frame, enhanced: Frame) -> None:
        self.sink.write_frame(enhanced)
        if self.compare is not None:
            self.compare.write_frame(side_by_side(original, enhanced))
        self.frames += 1
        if self.on_frame is not None:
            self.on_frame(enhanced)

    def packet(self, packet: av.Packet) -> None:
        self.sink.write_packet(packet)
        if self.compare is not None:
            self.compare.write_packet(packet)
        self.packets += 1

    def result(self, *, interrupted: bool) -> PipelineResult:
        return PipelineResult(self.frames, self.packets, interrupted=interrupted)


def run_pipeline(
    source: Iterable[Frame | av.Packet],
    stage: Callable[[Frame], Frame],
    sink: FrameSink,
    *,
    compare: FrameSink | None = None,
    stop: threading.Event | None = None,
    on_frame: Callable[[Frame], None] | None = None,
) -> PipelineResult:
    """Enhance every frame of ``source`` into ``sink``; pass other packets straight through.

    ``compare`` also receives ``input | output`` frames. Setting ``stop`` ends the run after the
    current frame; closing the sinks is the caller's job (so it happens on every path).
    """
    writer = FrameWriter(sink, compare=compare, on_frame=on_frame)
    for item in source:
        if stop is not None and stop.is_set():
            return writer.result(interrupted=True)
        if isinstance(item, Frame):
            writer.frame(item, stage(item))
        else:
            writer.packet(item)
    return writer.result(interrupted=False)

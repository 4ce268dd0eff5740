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

from .frame import Frame, side_by_side

__all__ = ["FrameSink", "PipelineResult", "run_pipeline"]


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
    frames = packets = 0
    for item in source:
        if stop is not None and stop.is_set():
            return PipelineResult(frames, packets, interrupted=True)
        if isinstance(item, Frame):
            enhanced = stage(item)
            sink.write_frame(enhanced)
            if compare is not None:
                compare.write_frame(side_by_side(item, enhanced))
            frames += 1
            if on_frame is not None:
                on_frame(enhanced)
        else:
            sink.write_packet(item)
            if compare is not None:
                compare.write_packet(item)
            packets += 1
    return PipelineResult(frames, packets, interrupted=False)

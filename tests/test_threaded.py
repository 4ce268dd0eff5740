"""The threaded pipeline: same output as the sequential one, bounded queues, clean errors and stops."""

from __future__ import annotations

import threading
import time

import av
import numpy as np
import pytest

from sagc.models import load_enhancer
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.media.frame import Frame
from sagc.stream.media.sources import VideoSource
from sagc.stream.run.pipeline import run_pipeline
from sagc.stream.run.threaded import ThreadedPipeline, run_pipeline_threaded

from .conftest import make_clip


class CollectingSink:
    """A real in-memory sink: keeps what it is given, in order."""

    def __init__(self, *, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.frames: list[Frame] = []
        self.packets: list[int] = []
        self.delay, self.fail_at = delay, fail_at

    def write_frame(self, frame: Frame) -> None:
        if self.fail_at is not None and len(self.frames) == self.fail_at:
            raise RuntimeError("disk full")
        time.sleep(self.delay)
        self.frames.append(frame)

    def write_packet(self, packet: av.Packet) -> None:
        self.packets.append(int(packet.pts))


@pytest.fixture(scope="module")
def stage(weights):
    return CpuStage(load_enhancer(weights))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "in.mp4", frames=30, audio=True)


def test_threaded_equals_sequential(clip, stage):
    sequential, threaded = CollectingSink(), CollectingSink()
    with VideoSource(str(clip)) as source:
        a = run_pipeline(source, stage, sequential)
    with VideoSource(str(clip)) as source:
        b = run_pipeline_threaded(source, stage, threaded, depth=2)
    assert a == b and a.frames == 30 and a.packets > 0
    assert [f.pts for f in threaded.frames] == [f.pts for f in sequential.frames]
    assert threaded.packets == sequential.packets
    for x, y in zip(sequential.frames, threaded.frames, strict=True):
        np.testing.assert_array_equal(x.rgb, y.rgb)


def test_queues_stay_bounded_under_a_slow_sink(clip, stage):
    sink = CollectingSink(delay=0.01)
    peaks = []
    with VideoSource(str(clip)) as source:
        pipeline = ThreadedPipeline(source, stage, sink, depth=3)
        watcher_stop = threading.Event()

        def watch() -> None:
            while not watcher_stop.is_set():
                peaks.append(max(pipeline.decoded.qsize(), pipeline.enhanced.qsize()))
                time.sleep(0.001)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            result = pipeline.run()
        finally:
            watcher_stop.set()
            watcher.join()
    assert result.frames == 30
    assert max(peaks) <= 3


def test_stage_error_surfaces_once_and_threads_end(clip, stage):
    sink = CollectingSink(fail_at=5)
    with VideoSource(str(clip)) as source:
        pipeline = ThreadedPipeline(source, stage, sink, depth=2)
        with pytest.raises(RuntimeError, match="disk full"):
            pipeline.run()
    assert len(sink.frames) == 5
    assert not any(t.is_alive() for t in pipeline._threads)


def test_stop_writes_everything_decoded(clip, stage):
    stop = threading.Event()
    sink = CollectingSink()

    def on_frame(_frame: Frame) -> None:
        if len(sink.frames) == 8:
            stop.set()

    with VideoSource(str(clip)) as source:
        result = run_pipeline_threaded(source, stage, sink, stop=stop, on_frame=on_frame, depth=2)
    assert result.interrupted
    assert 8 <= result.frames < 30
    assert [f.index for f in sink.frames] == list(range(result.frames))


def test_read_ahead_keeps_order_raises_in_place_and_stops_early():
    from sagc.stream.run.threaded import read_ahead

    assert list(read_ahead(range(50), depth=3)) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise RuntimeError("boom")

    got = []
    with pytest.raises(RuntimeError, match="boom"):
        for item in read_ahead(failing()):
            got.append(item)
    assert got == [1, 2]

    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    for item in read_ahead(endless(), depth=2):
        if item == 5:
            break
    assert closed.wait(5)

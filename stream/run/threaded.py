"""The concurrent pipeline: decode, enhance and encode in their own threads, bounded queues.

PyAV releases the GIL inside codec work and torch inside its kernels, so the three stages
overlap and throughput approaches the slowest one. Items keep their order (one thread per
stage, FIFO queues); the first error in any stage stops the others and is raised once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import av

from sagc.stream.enhance.stage import FrameStage, as_frame_stage
from sagc.stream.media.frame import Frame
from sagc.stream.media.queues import POLL, offer
from sagc.stream.run.pipeline import FrameSink, FrameWriter, PipelineResult

__all__ = ["ThreadedPipeline", "run_pipeline_threaded", "read_ahead"]

T = TypeVar("T")

_END = object()


class _Aborted(Exception):
    """Raised inside a worker when another stage failed."""


class ThreadedPipeline:
    """source → [queue] → stage → [queue] → sink(s), each arrow a thread boundary.

    Owns its threads: use as a context manager or call :meth:`close`. ``stop`` ends decoding;
    frames already decoded are still enhanced and written, so the output holds every frame
    that left the decoder.
    """

    def __init__(
        self,
        source: Iterable[Frame | av.Packet],
        stage: FrameStage | Callable[[Frame], Frame],
        sink: FrameSink,
        *,
        compare: FrameSink | None = None,
        stop: threading.Event | None = None,
        on_frame: Callable[[Frame], None] | None = None,
        depth: int = 4,
    ) -> None:
        if depth < 1:
            raise ValueError(f"queue depth must be at least 1, got {depth}")
        self._source = source
        self._writer = FrameWriter(sink, compare=compare, on_frame=on_frame)
        self._stage = as_frame_stage(stage)
        self._stop = stop or threading.Event()
        self.decoded: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.enhanced: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._abort = threading.Event()
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()
        self.interrupted = False
        self._threads = [
            threading.Thread(target=self._guard, args=(self._decode,), name="sagc-decode", daemon=True),
            threading.Thread(target=self._guard, args=(self._enhance,), name="sagc-enhance", daemon=True),
            threading.Thread(target=self._guard, args=(self._encode,), name="sagc-encode", daemon=True),
        ]

    def _guard(self, work: Callable[[], None]) -> None:
        try:
            work()
        except _Aborted:
            pass
        except BaseException as exc:  # surfaced once by run()
            with self._lock:
                self._errors.append(exc)
            self._abort.set()
            self._cancel_stage()

    def _cancel_stage(self) -> None:
        self._stage.cancel()  # a stage with buffers in flight (CUDA) stops waiting for room

    def _put(self, q: queue.Queue[Any], item: Any) -> None:
        if not offer(q, item, self._abort):
            raise _Aborted

    def _get(self, q: queue.Queue[Any]) -> Any:
        while True:
            if self._abort.is_set():
                raise _Aborted
            try:
                return q.get(timeout=POLL)
            except queue.Empty:
                continue

    def _decode(self) -> None:
        try:
            for item in self._source:
                if self._stop.is_set():
                    self.interrupted = True
                    break
                self._put(self.decoded, item)
        finally:
            if not self._abort.is_set():
                self._put(self.decoded, _END)

    def _enhance(self) -> None:
        # submit returns a ticket (at once on CUDA, before the pixels are back); the encode
        # thread waits for that frame's pixels only when it needs them.
        while (item := self._get(self.decoded)) is not _END:
            if isinstance(item, Frame):
                item = (item, self._stage.submit(item))
            self._put(self.enhanced, item)
        self._put(self.enhanced, _END)

    def _encode(self) -> None:
        while (item := self._get(self.enhanced)) is not _END:
            if isinstance(item, tuple):
                original, ticket = item
                self._writer.frame(original, ticket.result())
            else:
                self._writer.packet(item)

    def run(self) -> PipelineResult:
        """Run to the end of the source (or ``stop``); raise the first stage error, if any."""
        for thread in self._threads:
            thread.start()
        try:
            for thread in self._threads:
                while thread.is_alive():  # short joins keep the main thread responsive to signals
                    thread.join(timeout=0.1)
        except BaseException:
            self._abort.set()
            self._cancel_stage()
            raise
        finally:
            self.close()
        if self._errors:
            raise self._errors[0]
        return self._writer.result(interrupted=self.interrupted)

    @property
    def frames(self) -> int:
        """Frames written so far."""
        return self._writer.frames

    @property
    def packets(self) -> int:
        """Packets passed through so far."""
        return self._writer.packets

    def close(self) -> None:
        """Stop every stage and wait for the threads (idempotent; sinks stay the caller's)."""
        if any(t.is_alive() for t in self._threads):
            self._abort.set()
        for thread in self._threads:
            if thread.ident is not None:
                thread.join()

    def __enter__(self) -> ThreadedPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_pipeline_threaded(
    source: Iterable[Frame | av.Packet],
    stage: Callable[[Frame], Frame],
    sink: FrameSink,
    *,
    compare: FrameSink | None = None,
    stop: threading.Event | None = None,
    on_frame: Callable[[Frame], None] | None = None,
    depth: int = 4,
) -> PipelineResult:
    """:func:`sagc.stream.run.pipeline.run_pipeline` with the three stages in their own threads."""
    pipeline = ThreadedPipeline(source, stage, sink, compare=compare, stop=stop, on_frame=on_frame, depth=depth)
    with pipeline:
        return pipeline.run()


def read_ahead(items: Iterable[T], *, depth: int = 4) -> Iterator[T]:
    """Iterate ``items`` in a background thread, up to ``depth`` items ahead of the consumer.

    Errors in the producer are raised in the consumer at the point they occurred; leaving the
    loop early stops the producer (and closes ``items`` if it is a generator).
    """
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not offer(buffer, item, stop):
                    return
        except BaseException as exc:  # handed to the consumer
            failure.append(exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            offer(buffer, _END, stop)

    thread = threading.Thread(target=produce, name="sagc-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := buffer.get()) is not _END:
            yield item
        if failure:
            raise failure[0]
    finally:
        stop.set()
        thread.join()

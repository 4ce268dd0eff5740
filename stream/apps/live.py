"""Live sources: cameras, network streams, lavfi graphs and paced files, read in a thread.

Live policy: the reader never waits for the consumer. It keeps only the newest frame in a
one-slot mailbox (:class:`LatestFrame`); a frame the consumer had not taken yet is dropped and
counted, so latency stays bounded by one frame plus processing. Network streams reconnect with
exponential backoff; a camera that stops delivering ends the session with a clear message.
An unpaced file (``realtime=False``) is the exception: every frame is delivered, in order.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av.error

from sagc.core.errors import SagcError
from sagc.stream.media.frame import Frame
from sagc.stream.media.queues import offer
from sagc.stream.media.sources import VideoSource, is_lavfi, is_url

__all__ = ["LiveSpec", "parse_live_source", "LatestFrame", "LiveFrame", "LiveCapture", "EndOfStream"]

log = logging.getLogger(__name__)

SourceKind = Literal["camera", "network", "lavfi", "file"]


@dataclass(frozen=True, slots=True)
class LiveSpec:
    """How to open a ``--source``: what PyAV gets, with which demuxer and options."""

    kind: SourceKind
    target: str
    input_format: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return self.target if self.kind != "lavfi" else "lavfi"


def parse_live_source(text: str, *, size: str | None = None, platform: str = sys.platform) -> LiveSpec:
    """``0`` / ``/dev/video2`` / ``video=NAME`` (cameras), URLs, ``lavfi:GRAPH`` or a file."""
    options = (("video_size", size),) if size else ()
    if text.isdigit():
        if platform.startswith("linux"):
            return LiveSpec("camera", f"/dev/video{text}", "v4l2", options)
        if platform == "darwin":
            return LiveSpec("camera", text, "avfoundation", options + (("framerate", "30"),))
        raise SagcError(f"camera index {text} is not supported on {platform}; pass --source 'video=DEVICE NAME'")
    if text.startswith("/dev/video"):
        return LiveSpec("camera", text, "v4l2", options)
    if text.startswith("video="):
        return LiveSpec("camera", text, "dshow", options)
    if is_url(text):
        return LiveSpec("network", text)
    if is_lavfi(text):
        return LiveSpec("lavfi", text)
    path = Path(text)
    if not path.is_file():
        raise SagcError(f"--source {text}: not a camera index, device, URL, lavfi:GRAPH or existing file")
    return LiveSpec("file", text)


@dataclass(slots=True)
class LiveFrame:
    """A frame and the monotonic time it arrived from the source (latency is measured from it)."""

    frame: Frame
    arrived: float


class EndOfStream(Exception):
    """The source ended (or failed: then :attr:`LiveCapture.error` holds why)."""


class LatestFrame:
    """One-slot mailbox: :meth:`put` replaces a frame nobody took (counted in :attr:`dropped`)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: LiveFrame | None = None
        self._closed = False
        self.received = 0
        self.dropped = 0

    def put(self, item: LiveFrame) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self.received += 1
            self._cond.notify()

    def get(self, timeout: float | None = None) -> LiveFrame | None:
        """The newest frame; ``None`` after ``timeout``; :class:`EndOfStream` once closed and empty."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._item is not None or self._closed, timeout):
                return None
            if self._item is None:
                raise EndOfStream
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _EveryFrame:
    """The mailbox for unpaced files: a short blocking queue, nothing dropped."""

    def __init__(self, stop: threading.Event) -> None:
        self._queue: queue.Queue[LiveFrame | None] = queue.Queue(maxsize=2)
        self._stop = stop
        self.received = 0
        self.dropped = 0

    def put(self, item: LiveFrame) -> None:
        if offer(self._queue, item, self._stop):
            self.received += 1

    def get(self, timeout: float | None = None) -> LiveFrame | None:
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is None:
            self._queue.put(None)  # stay closed for later calls
            raise EndOfStream
        return item

    def close(self) -> None:
        while True:
            try:
                self._queue.put(None, timeout=0.05)
                return
            except queue.Full:
                if self._stop.is_set():
                    try:
                        self._queue.get_nowait()
                    except queue.Empty:
                        pass


class LiveCapture:
    """Reads ``spec`` in a background thread; :meth:`get` returns the newest frame.

    ``realtime`` paces files and lavfi graphs at their timestamps (cameras and network streams
    pace themselves); an unpaced file delivers every frame. Network sources reconnect up to
    ``retries`` times with backoff ``backoff · 2^k`` seconds (at most 8 s). ``planar`` hands
    8-bit 4:2:0 frames on as their planes (for a stage that works in them). Owns its thread:
    use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        spec: LiveSpec,
        *,
        realtime: bool = True,
        retries: int = 10,
        backoff: float = 0.5,
        planar: bool = False,
    ) -> None:
        self.spec = spec
        self.planar = planar
        self.realtime = realtime or spec.kind == "lavfi"
        self.retries, self.backoff = retries, backoff
        self.reconnects = 0
        self.error: SagcError | None = None
        self.info = None
        self._stop = threading.Event()
        self._mailbox: LatestFrame | _EveryFrame = (
            LatestFrame() if self.realtime or spec.kind in ("camera", "network") else _EveryFrame(self._stop)
        )
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sagc-capture", daemon=True)
        self._thread.start()

    @property
    def received(self) -> int:
        return self._mailbox.received

    @property
    def dropped(self) -> int:
        return self._mailbox.dropped

    def wait_open(self, timeout: float | None = None) -> bool:
        """Block until the first connection succeeded (True) or failed for good (raise its
        error); False if ``timeout`` passed first (a network source may still be retrying)."""
        opened = self._opened.wait(timeout)
        if self.error is not None and self.info is None:
            raise self.error
        return opened and self.info is not None

    def get(self, timeout: float | None = None) -> LiveFrame | None:
        """Newest frame (``None`` on timeout); raises the source's error or :class:`EndOfStream`."""
        try:
            return self._mailbox.get(timeout)
        except EndOfStream:
            if self.error is not None:
                raise self.error from None
            raise

    def _open(self) -> VideoSource:
        return VideoSource(
            self.spec.target, input_format=self.spec.input_format, options=dict(self.spec.options), planar=self.planar
        )

    def _run(self) -> None:
        attempt = 0
        try:
            while not self._stop.is_set():
                try:
                    source = self._open()
                except SagcError as exc:
                    if self.spec.kind != "network" or attempt >= self.retries:
                        self.error = exc if attempt == 0 else SagcError(f"{self.spec.label}: gave up after "
                                                                         f"{attempt} reconnects ({exc})")  # fmt: skip
                        return
                    attempt += 1
                    self._sleep_backoff(attempt, str(exc))
                    continue
                with source:
                    if self.info is None:
                        self.info = source.info
                    self._opened.set()
                    delivered = self._pump(source)
                if delivered:
                    attempt = 0
                if self._stop.is_set():
                    return
                if self.spec.kind == "camera":
                    self.error = SagcError(f"camera {self.spec.target} stopped delivering frames (unplugged?)")
                    return
                if self.spec.kind != "network":
                    return  # end of a file or graph
                if attempt >= self.retries:
                    self.error = SagcError(f"{self.spec.label}: stream lost; gave up after {attempt} reconnects")
                    return
                attempt += 1
                self.reconnects += 1
                self._sleep_backoff(attempt, "stream ended")
        finally:
            self._opened.set()
            self._mailbox.close()

    def _sleep_backoff(self, attempt: int, why: str) -> None:
        delay = min(8.0, self.backoff * 2 ** (attempt - 1))
        log.warning("%s: %s; reconnecting in %.1f s (attempt %d of %d)", self.spec.label, why, delay, attempt,
                    self.retries)  # fmt: skip
        self._stop.wait(delay)

    def _pump(self, source: VideoSource) -> int:
        """Forward frames until the source ends, fails or we are stopped; returns the count."""
        delivered = 0
        clock_start: float | None = None
        media_start: float | None = None
        try:
            for item in source:
                if self._stop.is_set():
                    break
                if not isinstance(item, Frame):
                    continue
                if self.realtime and self.spec.kind in ("file", "lavfi") and item.time is not None:
                    if clock_start is None or media_start is None:
                        clock_start, media_start = time.monotonic(), item.time
                    due = clock_start + (item.time - media_start)
                    if self._stop.wait(max(0.0, due - time.monotonic())):
                        break
                self._mailbox.put(LiveFrame(item, time.monotonic()))
                delivered += 1
        except (av.error.FFmpegError, OSError) as exc:
            log.warning("%s: read failed after %d frames: %s", self.spec.label, delivered, exc)
        return delivered

    def close(self) -> None:
        """Stop reading and wait for the thread (idempotent)."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

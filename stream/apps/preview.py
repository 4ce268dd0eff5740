"""Live preview: newest frame → enhance → before|after view, with counters and controls.

One :class:`PreviewSession` owns the loop (its own thread). It takes the newest frame from a
:class:`~sagc.stream.apps.live.LiveCapture`, enhances it, composes the view (side by side, or a
split: left half input, right half output), optionally records it, and publishes it for the
window and the web page. Controls (each of :func:`sagc.models.settings.controls` on or off:
smoothing, noise reduction, exposure gate, guided upsampling, temporal noise reduction; ``ev``
in stops; the view) are requested from any thread and applied by the loop between frames, so they reach the pipeline
in order.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from sagc.core.atomic import publish, temporary_path
from sagc.core.errors import SagcError
from sagc.core.timing import percentiles
from sagc.models.settings import adjustables, controls
from sagc.stream.apps.live import EndOfStream, LiveCapture
from sagc.stream.enhance.stage import Stage
from sagc.stream.media.frame import Frame
from sagc.stream.media.sinks import EncoderSettings, EncoderSink
from sagc.stream.media.sources import VideoInfo

__all__ = ["PreviewSession", "PreviewStats", "check_control", "compose", "VIEWS"]

log = logging.getLogger(__name__)

VIEWS = ("side", "split")
_WINDOW = 60  # frames in the rolling fps/latency window


def compose(before: np.ndarray, after: np.ndarray, view: str) -> np.ndarray:
    """``side``: before | after; ``split``: left half of before, right half of after."""
    if view == "side":
        return np.concatenate([before, after], axis=1)
    if view == "split":
        half = before.shape[1] // 2
        out = after.copy()
        out[:, :half] = before[:, :half]
        out[:, half : half + 1] = 255
        return out
    raise ValueError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")


@dataclass
class PreviewStats:
    """What the page and the window show; also what ``sagc bench`` reads for live latency.

    ``controls`` says which toggle is on, by control name (``smoothing``, ``denoise``, ``gate``,
    ``guide``: the run-time settings that have a preview control); ``values`` the stepped
    settings' values (``ev``)."""

    shown: int
    received: int
    dropped: int
    fps: float
    latency_p50_ms: float
    latency_p95_ms: float
    controls: dict[str, bool]
    values: dict[str, float]
    view: str
    reconnects: int
    running: bool

    def as_json(self) -> dict[str, object]:
        """Flat JSON for ``GET /stats``: the counters, ``view``, one boolean per toggle and the
        stepped settings' values."""
        plain = {name: value for name, value in asdict(self).items() if name not in ("controls", "values")}
        return {**plain, **self.controls, **self.values}


def check_control(name: str, value: object) -> bool | float | str:
    """``value`` for the preview control ``name``, or a ValueError saying what is accepted: true or
    false for a toggle (``smoothing``, ``denoise``, ``gate``, ``guide``), a number in range for a
    stepped setting (``ev``), one of :data:`VIEWS` for ``view``."""
    if name in controls():
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    if name in adjustables():
        return adjustables()[name].check(value)  # a ValueError names the range
    if name == "view":
        if value not in VIEWS:
            raise ValueError(f"unknown view {value!r}; choose one of {', '.join(VIEWS)}")
        return value
    toggles = ", ".join(f"{n}: true|false" for n in controls())
    steps = "".join(f", {n}: {s.low:g}…{s.high:g}" for n, s in adjustables().items())
    raise ValueError(f"unknown control {name!r}; known: {toggles}{steps}, view: {'|'.join(VIEWS)}")


class _Recorder:
    """Writes the composed view to a file (a unique ``.partial`` name until closed, then published)."""

    def __init__(
        self, path: Path, width: int, height: int, rate: Fraction, settings: EncoderSettings, *, overwrite: bool
    ) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        info = VideoInfo(width, height, "yuv420p", 8, rate, Fraction(1, 1000), 0, 2, 2, 2, 0, "rawvideo", None)
        self.partial = temporary_path(self.path)
        try:
            self.sink = EncoderSink(self.path, info, settings=settings, container_path=self.partial)
        except BaseException:
            self.partial.unlink(missing_ok=True)
            raise
        self.start: float | None = None
        self.last_pts = -1

    def write(self, rgb: np.ndarray, now: float) -> None:
        if self.start is None:
            self.start = now
        pts = max(self.last_pts + 1, round((now - self.start) * 1000))
        self.last_pts = pts
        try:
            self.sink.write_frame(Frame(rgb, pts, Fraction(1, 1000)))
        except (OSError, av.error.FFmpegError) as exc:  # a full disk, a file-size limit
            self._abandon(exc)

    def close(self) -> Path:
        try:
            self.sink.close()
        except (OSError, av.error.FFmpegError) as exc:
            self._abandon(exc)
        except BaseException:
            self.partial.unlink(missing_ok=True)
            raise
        if self.sink.frames_written:
            return publish(self.partial, self.path, overwrite=self.overwrite)
        self.partial.unlink(missing_ok=True)
        return self.path

    def _abandon(self, exc: BaseException) -> None:
        """The recording cannot go on: nothing half-written is kept, and one clear line says why."""
        try:
            self.sink.close()
        except Exception as error:  # the write's error is the one to report
            log.debug("closing the recording after an error failed: %s", error)
        self.partial.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SagcError(
            f"cannot record to {self.path}: {reason}; nothing was kept (free space, or choose another --record path)"
        ) from exc


class PreviewSession:
    """The preview loop; ``run()`` blocks, or ``start()`` it in a thread and ``close()`` it.
    ``overlap``: the stage's :attr:`~sagc.stream.enhance.stage.Stage.overlap` while the loop
    runs (no encoder takes the second core here, unless recording)."""

    def __init__(
        self,
        capture: LiveCapture,
        stage: Stage,
        *,
        view: str = "side",
        record: str | Path | None = None,
        record_settings: EncoderSettings = EncoderSettings(),
        overwrite: bool = False,
        max_frames: int | None = None,
        overlap: bool = True,
    ) -> None:
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
        self.capture, self.stage = capture, stage
        # a toggle switches its setting off, or back on at the value the stage started with
        # (the setting's own default where that was off: RuntimeSettings.toggled)
        self.reference = stage.settings
        self.view = view
        self.record_path = Path(record) if record else None
        self.record_settings = record_settings
        self.overwrite = overwrite
        self.max_frames = max_frames
        self.overlap = overlap
        self.error: BaseException | None = None
        self._recorder: _Recorder | None = None
        self._requests: collections.deque[tuple[str, object]] = collections.deque()
        self._cond = threading.Condition()
        self._latest: np.ndarray | None = None
        self._latest_id = 0
        self._times: collections.deque[float] = collections.deque(maxlen=_WINDOW)
        self._latencies: collections.deque[float] = collections.deque(maxlen=_WINDOW)
        self.latencies_all: list[float] = []
        self._stop = threading.Event()
        self._running = False
        self._thread: threading.Thread | None = None

    # -- controls (any thread) -------------------------------------------------------------
    def request(self, name: str, value: object) -> None:
        """Ask the loop to change a control (:func:`check_control`) before the next frame."""
        self._requests.append((name, check_control(name, value)))

    def _apply_requests(self) -> None:
        settings = self.stage.settings
        while self._requests:
            name, value = self._requests.popleft()
            if name == "view":
                self.view = str(value)
            elif name in adjustables():
                settings = settings.replace(**{name: value})
            else:
                settings = settings.toggled(controls()[name], bool(value), reference=self.reference)
        if settings is not self.stage.settings:
            self.stage.configure(settings)

    # -- output (any thread) ---------------------------------------------------------------
    def latest(self, after: int = 0, timeout: float | None = None) -> tuple[int, np.ndarray | None]:
        """``(id, rgb)`` of the newest composed frame newer than ``after`` (waits up to ``timeout``)."""
        with self._cond:
            self._cond.wait_for(lambda: self._latest_id > after or not self._running, timeout)
            return self._latest_id, self._latest

    def stats(self) -> PreviewStats:
        times = list(self._times)
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        latency = percentiles(list(self._latencies))
        return PreviewStats(
            shown=self._latest_id,
            received=self.capture.received,
            dropped=self.capture.dropped,
            fps=round(fps, 2),
            latency_p50_ms=round(latency["p50"], 2),
            latency_p95_ms=round(latency["p95"], 2),
            controls={name: not s.off(getattr(self.stage.settings, s.name)) for name, s in controls().items()},
            values={name: getattr(self.stage.settings, name) for name in adjustables()},
            view=self.view,
            reconnects=self.capture.reconnects,
            running=self._running,
        )

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        """Process frames until the source ends, ``max_frames`` were shown, or :meth:`close`.
        The stage's ``overlap`` is the session's while it runs, and the input's RGB for the
        view is converted beside the stage."""
        self._running = True
        overlap, self.stage.overlap = self.stage.overlap, self.overlap
        converter = ThreadPoolExecutor(1, thread_name_prefix="sagc-preview-rgb")
        try:
            while not self._stop.is_set():
                try:
                    item = self.capture.get(timeout=0.1)
                except EndOfStream:
                    break
                if item is None:
                    continue
                self._apply_requests()
                before = converter.submit(lambda frame=item.frame: frame.rgb)  # (the stage only reads the frame)
                enhanced = self.stage(item.frame)
                view = compose(before.result(), enhanced.rgb, self.view)
                now = time.monotonic()
                if self.record_path is not None:
                    self._record(view, now)
                with self._cond:
                    self._latest = view
                    self._latest_id += 1
                    self._times.append(now)
                    self._latencies.append(now - item.arrived)
                    self.latencies_all.append(now - item.arrived)
                    self._cond.notify_all()
                if self.max_frames is not None and self._latest_id >= self.max_frames:
                    break
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            converter.shutdown()
            self.stage.overlap = overlap
            self._finish_recording()  # before the loop reads as stopped: its error is the run's
            with self._cond:
                self._running = False
                self._cond.notify_all()

    def _finish_recording(self) -> None:
        if self._recorder is None:
            return
        recorder, self._recorder = self._recorder, None
        try:
            path = recorder.close()
        except BaseException as exc:  # (the final flush: a full disk shows here)
            if self.error is None:
                self.error = exc
            return
        log.info("recorded %d frames to %s", recorder.sink.frames_written, path)

    def _record(self, view: np.ndarray, now: float) -> None:
        if self._recorder is None or self._recorder.sink.width != view.shape[1]:
            if self._recorder is not None:  # the view changed size: keep what was shown so far
                self._recorder.close()
                log.warning("view size changed; recording continues only at the first size")
                self.record_path = None
                return
            info = self.capture.info
            rate = info.rate if info is not None and info.rate else Fraction(30)
            self._recorder = _Recorder(
                self.record_path, view.shape[1], view.shape[0], rate, self.record_settings, overwrite=self.overwrite
            )
        self._recorder.write(view, now)

    def start(self) -> None:
        """Run the loop in a background thread (errors land in :attr:`error`)."""
        self._running = True

        def target() -> None:
            try:
                self.run()
            except BaseException:  # noqa: BLE001 - kept in self.error for the owner
                log.debug("preview loop failed", exc_info=True)

        self._thread = threading.Thread(target=target, name="sagc-preview", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the loop to end; True if it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        """Stop the loop (the recording is finalised) and the capture."""
        self._stop.set()
        self.wait()
        self.capture.close()

    def __enter__(self) -> PreviewSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def overlay(rgb: np.ndarray, stats: PreviewStats) -> np.ndarray:
    """The counters drawn on a copy of the view (for the local window)."""
    out = rgb.copy()
    switches = "  ".join(f"{name} {'on' if on else 'off'}" for name, on in stats.controls.items())
    switches += "".join(f"  {name} {value:+g}" for name, value in stats.values.items())
    keys = " ".join(f"[{s.key}] {name}" for name, s in controls().items() if s.key)
    keys += "".join(f" [{s.keys[0]}/{s.keys[1]}] {name}" for name, s in adjustables().items() if s.keys)
    text = (f"{stats.fps:.1f} fps  latency {stats.latency_p50_ms:.0f} ms  dropped {stats.dropped}  "
            f"{switches}  {keys} [v] view [q] quit")  # fmt: skip
    cv2.putText(out, text, (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out

"""The CUDA enhance stage: a ring of pinned host buffers, copy and compute streams, per-frame events.

For every 8-bit frame :meth:`CudaStage.submit` copies the pixels into the next pinned
slot, uploads them on the copy-in stream, runs the enhancer on the compute stream (fp16,
channels_last by default), downloads the result on the copy-out stream into the slot's pinned
output, and returns a :class:`PendingFrame` at once. Whoever needs the pixels (the encoder
thread) calls :meth:`PendingFrame.result`, which waits on that frame's event only, never on the
whole device. While frame *n* is downloaded, frame *n + 1* is computed and *n + 2* uploaded.

All buffers are allocated once per frame size. With ``graphs`` (the default) each slot's device
work (about 150 kernels with noise reduction on) is captured once into a CUDA graph and replayed
per frame with one launch, so the host spends microseconds per frame instead of milliseconds of
kernel launches; the graphs share one memory pool for their intermediates. They are captured
again when :meth:`~sagc.stream.enhance.stage.Stage.configure` changes the settings (the preview's toggles).
Temporal smoothing, the exposure tracking and the temporal noise reduction of video keep state
from frame to frame (the scene-cut test on the host), so while any is on the work runs eagerly,
its per-frame tensors coming from the caching allocator's pool for the compute stream. Either way
nothing is ``cudaMalloc``-ed per frame after warm-up.
Frames that are not 8-bit (16-bit sources) take the reference stage's floating-point path
(:func:`~sagc.stream.enhance.reference.enhance_float`) on the same device, with the same video state.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

import numpy as np
import torch

from sagc.models import Enhancer, RuntimeSettings
from sagc.stream.enhance.reference import enhance_float
from sagc.stream.enhance.stage import Done, Stage
from sagc.stream.media.frame import Frame

__all__ = ["CudaStage", "PendingFrame", "capture_graph"]

_POLL = 0.05


def capture_graph(
    work: Callable[[], object], *, stream: torch.cuda.Stream, pool: tuple | None = None, warmup: int = 3
) -> torch.cuda.CUDAGraph:
    """Run ``work`` ``warmup`` times on ``stream`` (off the default stream, as capture needs),
    then record it into a CUDA graph; ``pool`` shares another graph's memory pool.
    ``thread_local`` capture: other threads may wait on events of other work meanwhile."""
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            work()
    stream.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool, stream=stream, capture_error_mode="thread_local"):
        work()
    return graph


class _Slot:
    """One ring entry: pinned host in/out, device in/out, and the events that order them."""

    def __init__(self, height: int, width: int, device: torch.device) -> None:
        shape = (height, width, 3)
        self.host_in = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        self.host_out = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        self.dev_in = torch.empty(shape, dtype=torch.uint8, device=device)
        self.dev_out = torch.empty(shape, dtype=torch.uint8, device=device)
        self.uploaded = torch.cuda.Event()
        self.computed = torch.cuda.Event()
        self.downloaded = torch.cuda.Event()
        self.graph: torch.cuda.CUDAGraph | None = None


class PendingFrame:
    """An enhanced frame on its way back from the device; :meth:`result` waits for it."""

    def __init__(self, stage: CudaStage, slot: _Slot, frame: Frame) -> None:
        self._stage, self._slot, self._frame = stage, slot, frame
        self._done: Frame | None = None

    def result(self) -> Frame:
        """Wait on this frame's download event (only), copy the pixels out, free the slot."""
        if self._done is None:
            self._slot.downloaded.synchronize()
            self._done = self._frame.with_pixels(self._slot.host_out.numpy().copy())
            self._stage._release()
        return self._done


class CudaStage(Stage):
    """The :class:`~sagc.stream.enhance.stage.Stage` on CUDA with overlapped copies (see the module doc).

    ``slots`` pinned buffers are in flight at most; :meth:`submit` blocks while all are taken
    until a :meth:`PendingFrame.result` frees one. ``graphs`` replays each slot's device work
    from a captured CUDA graph whenever no temporal state is kept (see the module doc).
    """

    def __init__(
        self,
        enhancer: Enhancer,
        *,
        device: str | torch.device = "cuda",
        dtype: torch.dtype = torch.float16,
        slots: int = 4,
        graphs: bool = True,
        settings: RuntimeSettings | None = None,
    ) -> None:
        device = torch.device(device)
        if device.type != "cuda":
            raise ValueError(f"CudaStage needs a CUDA device, got {device}")
        if slots < 2:
            raise ValueError(f"need at least 2 slots to overlap copies, got {slots}")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        super().__init__(enhancer, device=device, dtype=dtype)
        self.slots = slots
        self.graphs = graphs
        self._captured: RuntimeSettings | None = None  # the settings the graphs were made with
        with torch.cuda.device(self.device):
            self.copy_in = torch.cuda.Stream()
            self.compute = torch.cuda.Stream()
            self.copy_out = torch.cuda.Stream()
        self._ring: list[_Slot] = []
        self._size: tuple[int, int] | None = None
        self._next = 0
        self._free = threading.Semaphore(slots)
        self._cancelled = threading.Event()
        self.configure(settings or enhancer.settings)

    # -- ring bookkeeping -----------------------------------------------------------------
    def _release(self) -> None:
        self._free.release()

    def _acquire(self) -> None:
        while not self._free.acquire(timeout=_POLL):
            if self._cancelled.is_set():
                raise RuntimeError("CUDA stage cancelled while waiting for a free buffer")

    def cancel(self) -> None:
        """Unblock a waiting :meth:`submit` (the pipeline is shutting down)."""
        self._cancelled.set()

    def reset(self) -> None:
        """Forget temporal state and in-flight frames (between clips)."""
        if self._ring:
            torch.cuda.synchronize(self.device)
        self._free = threading.Semaphore(self.slots)
        self._cancelled.clear()
        self._next = 0
        super().reset()

    def close(self) -> None:
        """Let the frames in flight land, then drop the ring and its graphs."""
        self.cancel()
        if self._ring:
            torch.cuda.synchronize(self.device)
        self._ring = []
        self._size = None
        self._captured = None

    def _ensure_ring(self, height: int, width: int) -> None:
        if self._size == (height, width):
            return
        if self._ring:  # size changed mid-stream: let everything in flight land first
            for _ in range(self.slots):
                self._acquire()
            for _ in range(self.slots):
                self._release()
        self._ring = []  # drop the old graphs (and their pool) first
        self._ring = [_Slot(height, width, self.device) for _ in range(self.slots)]
        self._size = (height, width)
        self._next = 0
        self._captured = None

    def _capture(self) -> None:
        """Record every slot's device work into a CUDA graph (one memory pool for all)."""
        torch.cuda.synchronize(self.device)  # frames in flight land first (their buffers are reused)
        for slot in self._ring:
            slot.graph = None
        with torch.cuda.device(self.device):
            pool = None
            for index, slot in enumerate(self._ring):
                work = functools.partial(self._enhance_on_device, slot)
                slot.graph = capture_graph(work, stream=self.compute, pool=pool, warmup=0 if index else 3)
                pool = slot.graph.pool()
        self._captured = self.settings

    def estimator_runner(self, x: torch.Tensor) -> Callable[[], object]:
        """The estimator on ``x`` replayed from a CUDA graph when this stage uses graphs."""
        run = super().estimator_runner(x)
        if not self.graphs:
            return run
        with torch.cuda.device(self.device):
            return capture_graph(run, stream=torch.cuda.Stream()).replay

    # -- the work -----------------------------------------------------------------------------
    @torch.inference_mode()
    def _enhance_on_device(self, slot: _Slot) -> None:
        x = slot.dev_in.permute(2, 0, 1).unsqueeze(0).to(self.dtype).mul_(1.0 / 255.0)
        x = x.contiguous(memory_format=torch.channels_last)
        y = self.enhancer(x, **self.video_state.hooks())
        slot.dev_out.copy_(y[0].permute(1, 2, 0).float().mul_(255.0).round_().clamp_(0.0, 255.0))

    def submit(self, frame: Frame) -> PendingFrame | Done:
        """Start enhancing ``frame``; returns a :class:`PendingFrame` (or, for non-8-bit
        frames, the finished frame from the floating-point path)."""
        if frame.rgb.dtype != np.uint8:
            return Done(enhance_float(self.enhancer, frame, self.video_state, device=self.device, dtype=self.dtype))
        self._ensure_ring(frame.height, frame.width)
        replay = self.graphs and not self.video_state.active
        if replay and self._captured is not self.settings:
            self._capture()
        self._acquire()
        slot = self._ring[self._next]
        self._next = (self._next + 1) % self.slots
        slot.uploaded.synchronize()  # the previous upload from this host buffer has finished
        slot.host_in.numpy()[...] = frame.rgb
        with torch.cuda.device(self.device):
            self.copy_in.wait_event(slot.computed)  # the last compute read dev_in
            with torch.cuda.stream(self.copy_in):
                slot.dev_in.copy_(slot.host_in, non_blocking=True)
                slot.uploaded.record(self.copy_in)
            self.compute.wait_event(slot.uploaded)
            self.compute.wait_event(slot.downloaded)  # the last download read dev_out
            with torch.cuda.stream(self.compute):
                if replay and slot.graph is not None:
                    slot.graph.replay()
                else:
                    self._enhance_on_device(slot)
                slot.computed.record(self.compute)
            self.copy_out.wait_event(slot.computed)
            with torch.cuda.stream(self.copy_out):
                slot.host_out.copy_(slot.dev_out, non_blocking=True)
                slot.downloaded.record(self.copy_out)
        return PendingFrame(self, slot, frame)

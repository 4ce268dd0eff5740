"""The enhance stage: the one interface pipelines, the bench and the preview talk to.

A :class:`Stage` enhances :class:`~sagc.stream.media.frame.Frame` objects through an
:class:`~sagc.models.Enhancer`: :meth:`~Stage.submit` starts a frame and returns a ticket whose
``result()`` is the enhanced frame (at once on the CPU; after the device's copies on CUDA, so
up to :attr:`~Stage.slots` frames overlap), :meth:`~Stage.configure` changes the run-time
settings between frames (the preview's toggles), :meth:`~Stage.reset` forgets temporal state
between clips, :meth:`~Stage.cancel` unblocks a waiting submit when a pipeline shuts down, and
:meth:`~Stage.close` releases what the stage holds. A stage declares what it can do
(:attr:`~Stage.planar`, :attr:`~Stage.reuses_estimates`). Implementations: ``cpu_stage.CpuStage``,
``cuda_stage.CudaStage`` and ``reference.ReferenceStage`` (the float path on any device);
``stages.make_stage`` picks one for a device.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch

from sagc.core.timing import StepTimer
from sagc.models import Enhancer, RuntimeSettings
from sagc.ops.temporal_denoise import TemporalDenoiser
from sagc.stream.enhance.smoothing import ExposureTracker, GammaSmoother
from sagc.stream.enhance.video_state import VideoState
from sagc.stream.media.frame import Frame

__all__ = ["Done", "FrameStage", "Stage", "Ticket", "as_frame_stage"]


class Ticket(Protocol):
    """A frame on its way through a stage."""

    def result(self) -> Frame: ...


class Done:
    """A ticket for a frame that is already finished."""

    __slots__ = ("_frame",)

    def __init__(self, frame: Frame) -> None:
        self._frame = frame

    def result(self) -> Frame:
        return self._frame


class Stage(ABC):
    """Enhance frames with ``enhancer`` on ``device``; the settings live in the enhancer."""

    slots: int = 1  # frames that may be in flight at once
    planar: bool = False  # enhances 8-bit 4:2:0 frames in their planes (Frame.planes) without RGB
    reuses_estimates: bool = False  # video frames may reuse the last estimate while the light holds
    overlap: bool = False  # video: a frame's estimate may run on a worker beside its full-resolution work
    timer: StepTimer | None = None  # set to time the implementation's steps (sagc bench)

    def __init__(self, enhancer: Enhancer, *, device: torch.device, dtype: torch.dtype) -> None:
        self.device = device
        self.dtype = dtype
        self.enhancer = enhancer.to(device=device, dtype=dtype).eval()
        self.enhancer.to(memory_format=torch.channels_last)
        self.video_state = VideoState()  # what carries over between frames (video)

    @property
    def settings(self) -> RuntimeSettings:
        """The run-time settings frames are enhanced with."""
        return self.enhancer.settings

    @property
    def smoother(self) -> GammaSmoother | None:
        return self.video_state.smoother

    @property
    def exposure(self) -> ExposureTracker | None:
        return self.video_state.exposure

    @property
    def temporal_denoiser(self) -> TemporalDenoiser | None:
        return self.video_state.temporal_denoiser

    def configure(self, settings: RuntimeSettings, *, temporal: bool = True) -> None:
        """Enhance the next frames with ``settings``; smoothing state survives unless the
        smoothing itself changes. ``temporal=False`` (unrelated stills) turns off everything
        that carries over from frame to frame: the γ smoothing, the exposure tracking and the temporal
        noise reduction."""
        if not isinstance(settings, RuntimeSettings):
            raise TypeError(f"configure takes RuntimeSettings, got {type(settings).__name__}")
        self.video_state.follow(settings, temporal=temporal)
        self.enhancer.settings = settings
        self._configured(settings)

    def _configured(self, settings: RuntimeSettings) -> None:  # noqa: B027 - optional for implementations
        """Hook: implementation state that follows the settings (tables, CUDA graphs)."""

    @abstractmethod
    def submit(self, frame: Frame) -> Ticket:
        """Start enhancing ``frame``; the ticket's ``result()`` is the enhanced frame."""

    def __call__(self, frame: Frame) -> Frame:
        return self.submit(frame).result()

    def reset(self) -> None:
        """Forget temporal state (call between unrelated clips)."""
        self.video_state.reset()

    def cancel(self) -> None:  # noqa: B027 - optional for implementations
        """Unblock a :meth:`submit` waiting for room (the pipeline is shutting down)."""

    def close(self) -> None:  # noqa: B027 - optional for implementations
        """Release what the stage holds."""

    def estimator_runner(self, x: torch.Tensor) -> Callable[[], object]:
        """A call that runs the estimator on the low-resolution ``x`` the way this stage does
        (for the bench's estimator figure)."""
        return lambda: self.enhancer.estimator(x)

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@runtime_checkable
class FrameStage(Protocol):
    """What a pipeline needs of a stage: :class:`Stage` has it, :func:`as_frame_stage` gives it
    to any ``Frame → Frame`` callable (a pass-through, the darkener of ``sagc data darken``)."""

    def submit(self, frame: Frame) -> Ticket: ...

    def cancel(self) -> None: ...


class _Apply:
    """A ``Frame → Frame`` callable as a :class:`FrameStage` (finished on submit)."""

    def __init__(self, function: Callable[[Frame], Frame]) -> None:
        self.function = function

    def submit(self, frame: Frame) -> Done:
        return Done(self.function(frame))

    def cancel(self) -> None:
        """Nothing waits inside a plain call."""


def as_frame_stage(stage: FrameStage | Callable[[Frame], Frame]) -> FrameStage:
    """``stage`` itself when it has ``submit`` (a :class:`Stage`), else the callable wrapped."""
    return stage if isinstance(stage, FrameStage) else _Apply(stage)

"""The reference stage: the :class:`~sagc.models.Enhancer` in floating point, on any device.

It enhances every frame whatever its depth or layout (RGB, converted from 4:2:0 where a source
gives planes), with the video state the stage carries; the CPU stage's 8-bit paths and the CUDA
stage's 8-bit ring are held to it by tests, and both send it what they do not handle themselves
(16-bit frames) through :func:`enhance_float`.
"""

from __future__ import annotations

import torch

from sagc.models import Enhancer, RuntimeSettings
from sagc.stream.enhance.stage import Done, Stage
from sagc.stream.enhance.video_state import VideoState
from sagc.stream.media.frame import Frame, frame_to_tensor, tensor_to_pixels

__all__ = ["ReferenceStage", "enhance_float"]


@torch.inference_mode()
def enhance_float(
    enhancer: Enhancer, frame: Frame, video_state: VideoState, *, device: torch.device, dtype: torch.dtype
) -> Frame:
    """``frame`` enhanced by ``enhancer`` (on ``device`` in ``dtype``) with the smoothing,
    exposure tracking and temporal noise reduction of ``video_state``."""
    x = frame_to_tensor(frame, device=device, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    y = enhancer(x, **video_state.hooks())
    return frame.with_pixels(tensor_to_pixels(y, dtype=frame.rgb.dtype))


class ReferenceStage(Stage):
    """Every frame through :func:`enhance_float`; finished on submit."""

    def __init__(
        self,
        enhancer: Enhancer,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        settings: RuntimeSettings | None = None,
    ) -> None:
        super().__init__(enhancer, device=torch.device(device), dtype=dtype)
        self.configure(settings or enhancer.settings)

    def submit(self, frame: Frame) -> Done:
        return Done(enhance_float(self.enhancer, frame, self.video_state, device=self.device, dtype=self.dtype))

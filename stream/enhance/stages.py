"""Choose the enhance stage for a device: :class:`~sagc.stream.enhance.cpu_stage.CpuStage` on the CPU,
:class:`~sagc.stream.enhance.cuda_stage.CudaStage` (pinned ring, overlapped copies, CUDA graphs) on CUDA."""

from __future__ import annotations

import torch

from sagc.models import Enhancer, RuntimeSettings
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.enhance.stage import Stage

__all__ = ["make_stage"]


def make_stage(
    enhancer: Enhancer, *, device: str | torch.device = "cpu", settings: RuntimeSettings | None = None
) -> Stage:
    """The stage for ``device``, configured with ``settings`` (default: the enhancer's)."""
    device = torch.device(device)
    if device.type == "cuda":
        from sagc.stream.enhance.cuda_stage import CudaStage  # only where CUDA is asked for

        return CudaStage(enhancer, device=device, settings=settings)
    return CpuStage(enhancer, device=device, settings=settings)

"""The torch device a user asked for, checked: it exists here, or one clear error."""

from __future__ import annotations

import torch

from sagc.core.errors import SagcError

__all__ = ["usable_device"]


def usable_device(name: str, *, option: str = "--device", cpu: str = "--device cpu") -> torch.device:
    """``name`` (``cpu``, ``cuda``, ``cuda:N``) as a torch device that exists here; errors name
    ``option`` (how the user set it) and ``cpu`` (how to ask for the CPU instead)."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise SagcError(f"unknown device {name!r} ({option}); use cpu, cuda or cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SagcError(f"{option} cuda: no CUDA device is available here; use {cpu}")
    if device.type not in ("cpu", "cuda"):
        raise SagcError(f"unsupported device {name!r} ({option}); use cpu, cuda or cuda:N")
    return device

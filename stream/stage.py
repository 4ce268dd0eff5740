"""The enhance stage: numpy RGB frames in, enhanced numpy RGB frames out, through an Enhancer."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys

import numpy as np
import torch

from sagc.models import Enhancer

from .frame import Frame

__all__ = ["FrameEnhancer", "frame_to_tensor", "tensor_to_pixels"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_HEAP_LIMIT = 32 * 1024 * 1024  # glibc's largest allowed mmap threshold on 64-bit


@functools.cache
def keep_frame_buffers_in_heap() -> bool:
    """Stop glibc from returning every frame-sized buffer to the kernel after use.

    By default each multi-megabyte tensor is its own mmap, so every frame pays thousands of
    page faults (on 2 cores that was ~40% of the time for 720p). Raising the mmap and trim
    thresholds lets freed frame buffers be reused from the heap instead.
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _HEAP_LIMIT) and libc.mallopt(_M_TRIM_THRESHOLD, 4 * _HEAP_LIMIT)
    except (OSError, AttributeError):
        return False
    log.debug("mallopt thresholds raised: %s", bool(ok))
    return bool(ok)


def frame_to_tensor(frame: Frame, *, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """H×W×3 uint8/uint16 pixels → 1×3×H×W float tensor in [0, 1] on ``device``."""
    pixels = frame.rgb if frame.rgb.dtype == np.uint8 else frame.rgb.astype(np.int32)
    x = torch.from_numpy(pixels).to(device=device, non_blocking=True)
    x = x.permute(2, 0, 1).unsqueeze(0).to(dtype)
    return x.mul_(1.0 / frame.max_value)


def tensor_to_pixels(y: torch.Tensor, *, dtype: np.dtype) -> np.ndarray:
    """1×3×H×W float tensor in [0, 1] → H×W×3 pixels of ``dtype`` (rounded, clamped)."""
    top = float(np.iinfo(dtype).max)
    y = y[0].permute(1, 2, 0).float().mul(top).round_().clamp_(0.0, top)
    if dtype == np.uint8:
        return y.to(torch.uint8).cpu().numpy()
    return y.to(torch.int32).cpu().numpy().astype(dtype)


class FrameEnhancer:
    """Callable stage that enhances one :class:`Frame`, keeping its timing and alpha."""

    def __init__(
        self,
        enhancer: Enhancer,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        keep_frame_buffers_in_heap()
        # Depthwise convolutions run several times faster in channels_last on CPU and GPU.
        self.enhancer = enhancer.to(device=self.device, dtype=dtype).eval()
        self.enhancer.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, frame: Frame) -> Frame:
        x = frame_to_tensor(frame, device=self.device, dtype=self.dtype)
        y = self.enhancer(x.contiguous(memory_format=torch.channels_last))
        return frame.with_pixels(tensor_to_pixels(y, dtype=frame.rgb.dtype))

"""The unit that travels through the pipeline: pixels plus the timing they were decoded with."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from sagc.core.errors import SagcError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Frame",
    "check_pixels",
    "frame_to_tensor",
    "pixels_to_tensor",
    "side_by_side",
    "tensor_to_pixels",
]

# the largest picture decoded by default: DCI 8K (8192×4320) and anything smaller
DEFAULT_MAX_PIXELS = 8192 * 4320


def check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    """Refuse a picture larger than ``max_pixels`` before it is decoded, with one clear line."""
    if width * height > max_pixels:
        raise SagcError(
            f"{what} is {width}x{height} ({width * height:,} pixels), more than the limit of {max_pixels:,}; "
            "pass --max-pixels N to allow it (sagc enhance needs about 120–170 bytes of memory per pixel)"
        )


@dataclass(slots=True)
class Frame:
    """One picture: H×W×3 RGB pixels (uint8, or uint16 for >8-bit sources) and its timing.

    ``pts`` and ``time_base`` are copied from the decoder and never invented by a stage;
    ``alpha`` (H×W, same dtype) rides along untouched for RGBA images; ``channels`` is the
    layout the source had (1 grey, 3 RGB, 4 RGBA) so a sink can write the same layout back.
    """

    rgb: np.ndarray
    pts: int | None = None
    time_base: Fraction | None = None
    index: int = 0
    alpha: np.ndarray | None = None
    channels: int = 3

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3:
            raise ValueError(f"Frame.rgb must be H×W×3, got shape {self.rgb.shape}")
        if self.rgb.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"Frame.rgb must be uint8 or uint16, got {self.rgb.dtype}")
        if self.alpha is not None and self.alpha.shape != self.rgb.shape[:2]:
            raise ValueError(f"Frame.alpha must be H×W {self.rgb.shape[:2]}, got shape {self.alpha.shape}")

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def max_value(self) -> int:
        """Largest code value of the pixel type (255 or 65535)."""
        return int(np.iinfo(self.rgb.dtype).max)

    @property
    def time(self) -> float | None:
        """Presentation time in seconds, when the frame has timing."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)

    def with_pixels(self, rgb: np.ndarray) -> Frame:
        """A frame with new pixels and this frame's timing, alpha and layout."""
        return Frame(rgb, self.pts, self.time_base, self.index, self.alpha, self.channels)


def side_by_side(left: Frame, right: Frame) -> Frame:
    """``left | right`` in one frame, with ``right``'s timing (for ``--compare``)."""
    if left.rgb.shape != right.rgb.shape or left.rgb.dtype != right.rgb.dtype:
        raise ValueError(
            f"side_by_side needs equal frames, got {left.rgb.shape}/{left.rgb.dtype} and "
            f"{right.rgb.shape}/{right.rgb.dtype}"
        )
    alpha = None
    if left.alpha is not None and right.alpha is not None:
        alpha = np.concatenate([left.alpha, right.alpha], axis=1)
    return Frame(
        np.concatenate([left.rgb, right.rgb], axis=1),
        right.pts,
        right.time_base,
        right.index,
        alpha,
        right.channels,
    )


def pixels_to_tensor(
    rgb: np.ndarray, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """H×W×3 uint8/uint16 pixels → 1×3×H×W float tensor in [0, 1] on ``device``."""
    top = float(np.iinfo(rgb.dtype).max)
    pixels = rgb if rgb.dtype == np.uint8 else rgb.astype(np.int32)  # torch has no uint16 arithmetic
    x = torch.from_numpy(np.ascontiguousarray(pixels)).to(device=device, non_blocking=True)
    return x.permute(2, 0, 1).unsqueeze(0).to(dtype).div_(top)


def frame_to_tensor(
    frame: Frame, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """A :class:`Frame`'s pixels as a 1×3×H×W float tensor in [0, 1] (:func:`pixels_to_tensor`)."""
    return pixels_to_tensor(frame.rgb, device=device, dtype=dtype)


def tensor_to_pixels(y: torch.Tensor, *, dtype: np.dtype) -> np.ndarray:
    """1×3×H×W float tensor in [0, 1] → H×W×3 pixels of ``dtype`` (rounded, clamped)."""
    top = float(np.iinfo(dtype).max)
    y = y[0].permute(1, 2, 0).float().mul(top).round_().clamp_(0.0, top)
    if dtype == np.uint8:
        return y.to(torch.uint8).cpu().numpy()
    return y.to(torch.int32).cpu().numpy().astype(dtype)

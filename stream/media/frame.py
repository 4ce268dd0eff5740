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
    "YuvPlanes",
    "check_pixels",
    "frame_to_tensor",
    "pixels_to_tensor",
    "side_by_side",
    "tensor_to_pixels",
]


def _accurate_scaling() -> int:
    """swscale's flags for unbiased RGB ↔ YUV conversion (PyAV loads here, not on import: still
    images and training need no video library)."""
    from av.video.reformatter import Interpolation

    return Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


"""swscale flags for unbiased conversions between RGB and 4:2:0."""

# the largest picture decoded by default: DCI 8K (8192×4320) and anything smaller
DEFAULT_MAX_PIXELS = 8192 * 4320


def check_pixels(width: int, height: int, max_pixels: int, what: str, *, flag: str | None = None) -> None:
    """Refuse a picture larger than ``max_pixels`` before it is decoded, with one clear line that
    names ``flag`` (the command's option that raises the limit) where the command has one."""
    if width * height > max_pixels:
        how = f"; pass {flag} N to allow it" if flag else ""
        raise SagcError(
            f"{what} is {width}x{height} ({width * height:,} pixels), more than the limit of {max_pixels:,}{how} "
            "(enhancing needs about 60–170 bytes of memory per pixel)"
        )


@dataclass(frozen=True, slots=True)
class YuvPlanes:
    """An 8-bit 4:2:0 picture as the decoder holds it: one I420 buffer (the Y plane, then U, then
    V, each at half width and height) and the matrix and range that turn it into RGB.

    ``matrix`` is swscale's name (:func:`sagc.ops.colour.swscale_colorspace`), ``color_range``
    an AVColorRange (1 limited, 2 full). Width and height are even.
    """

    i420: np.ndarray  # (H·3/2)×W uint8, C-contiguous
    width: int
    height: int
    matrix: str
    color_range: int

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or self.width <= 0 or self.height <= 0:
            raise ValueError(f"4:2:0 planes need an even width and height, got {self.width}x{self.height}")
        if self.i420.dtype != np.uint8 or self.i420.shape != (self.height * 3 // 2, self.width):
            raise ValueError(
                f"YuvPlanes.i420 must be {self.height * 3 // 2}x{self.width} uint8, "
                f"got {self.i420.shape}/{self.i420.dtype}"
            )
        if not self.i420.flags.c_contiguous:
            raise ValueError("YuvPlanes.i420 must be C-contiguous")

    @classmethod
    def empty_like(cls, other: YuvPlanes) -> YuvPlanes:
        """Planes of ``other``'s size and colour, contents undefined."""
        return cls(np.empty_like(other.i420), other.width, other.height, other.matrix, other.color_range)

    def split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views of the Y (H×W), U and V (H/2×W/2) planes."""
        flat = self.i420.reshape(-1)
        area = self.width * self.height
        quarter = area // 4
        half = (self.height // 2, self.width // 2)
        return (
            flat[:area].reshape(self.height, self.width),
            flat[area : area + quarter].reshape(half),
            flat[area + quarter :].reshape(half),
        )

    @classmethod
    def from_rgb(cls, rgb: np.ndarray, *, matrix: str = "itu601", color_range: int = 1) -> YuvPlanes:
        """H×W×3 uint8 RGB (even size) as 4:2:0 planes, converted by swscale with accurate
        rounding (its default rounds luma down by about half a level)."""
        import av

        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        picture = picture.reformat(
            format="yuv420p", dst_colorspace=matrix, dst_color_range=color_range, interpolation=_accurate_scaling()
        )
        return cls(picture.to_ndarray(), rgb.shape[1], rgb.shape[0], matrix, color_range)

    def to_rgb(self, *, accurate: bool = False) -> np.ndarray:
        """H×W×3 uint8 RGB, converted by swscale exactly as the decoder's own frames are, or
        with accurate rounding (``accurate``)."""
        import av

        picture = av.VideoFrame.from_ndarray(self.i420, format="yuv420p")
        return picture.to_ndarray(
            format="rgb24",
            src_colorspace=self.matrix,
            src_color_range=self.color_range,
            interpolation=_accurate_scaling() if accurate else None,
        )


class Frame:
    """One picture: H×W×3 RGB pixels (uint8, or uint16 for >8-bit sources) and its timing.

    A decoded 8-bit 4:2:0 frame may instead carry its :class:`YuvPlanes` (``planes``); its
    ``rgb`` is then converted on first use and kept, so a stage and an encoder that work in
    4:2:0 never pay for RGB, and everything else sees the same pixels as before.

    ``pts`` and ``time_base`` are copied from the decoder and never invented by a stage;
    ``alpha`` (H×W, same dtype) rides along untouched for RGBA images; ``channels`` is the
    layout the source had (1 grey, 2 grey with alpha, 3 RGB, 4 RGBA) so a sink can write the same
    layout back.
    """

    __slots__ = ("_rgb", "alpha", "channels", "index", "planes", "pts", "time_base")

    def __init__(
        self,
        rgb: np.ndarray | None = None,
        pts: int | None = None,
        time_base: Fraction | None = None,
        index: int = 0,
        alpha: np.ndarray | None = None,
        channels: int = 3,
        *,
        planes: YuvPlanes | None = None,
    ) -> None:
        if rgb is None and planes is None:
            raise ValueError("a Frame needs its RGB pixels or its 4:2:0 planes")
        if rgb is not None:
            if rgb.ndim != 3 or rgb.shape[2] != 3:
                raise ValueError(f"Frame.rgb must be H×W×3, got shape {rgb.shape}")
            if rgb.dtype not in (np.uint8, np.uint16):
                raise ValueError(f"Frame.rgb must be uint8 or uint16, got {rgb.dtype}")
        shape = rgb.shape[:2] if rgb is not None else (planes.height, planes.width)  # type: ignore[union-attr]
        if planes is not None and (planes.height, planes.width) != shape:
            raise ValueError(f"Frame planes are {planes.width}x{planes.height}, its RGB {shape[1]}x{shape[0]}")
        if alpha is not None and alpha.shape != shape:
            raise ValueError(f"Frame.alpha must be H×W {shape}, got shape {alpha.shape}")
        self._rgb = rgb
        self.planes = planes
        self.pts = pts
        self.time_base = time_base
        self.index = index
        self.alpha = alpha
        self.channels = channels

    def __repr__(self) -> str:
        kind = "rgb" if self._rgb is not None else "planes"
        return f"Frame({self.width}x{self.height} {kind}, pts={self.pts}, index={self.index})"

    @property
    def rgb(self) -> np.ndarray:
        """The H×W×3 pixels (converted from :attr:`planes` on first use)."""
        if self._rgb is None:
            assert self.planes is not None
            self._rgb = self.planes.to_rgb()
        return self._rgb

    @property
    def height(self) -> int:
        return int(self._rgb.shape[0]) if self._rgb is not None else self.planes.height  # type: ignore[union-attr]

    @property
    def width(self) -> int:
        return int(self._rgb.shape[1]) if self._rgb is not None else self.planes.width  # type: ignore[union-attr]

    @property
    def max_value(self) -> int:
        """Largest code value of the pixel type (255 or 65535)."""
        return 255 if self._rgb is None else int(np.iinfo(self._rgb.dtype).max)

    @property
    def eight_bit(self) -> bool:
        """True for 8-bit pixels (RGB or planes)."""
        return self._rgb is None or self._rgb.dtype == np.uint8

    @property
    def time(self) -> float | None:
        """Presentation time in seconds, when the frame has timing."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)

    def with_pixels(self, rgb: np.ndarray) -> Frame:
        """A frame with new pixels and this frame's timing, alpha and layout."""
        return Frame(rgb, self.pts, self.time_base, self.index, self.alpha, self.channels)

    def with_planes(self, planes: YuvPlanes) -> Frame:
        """A frame with new 4:2:0 planes and this frame's timing and layout."""
        return Frame(None, self.pts, self.time_base, self.index, self.alpha, self.channels, planes=planes)


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

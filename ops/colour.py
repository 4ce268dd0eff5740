"""Colour: every luma weight, YCbCr matrix and range conversion the product uses.

- Rec.709 luma (:data:`LUMA_WEIGHTS`, :func:`luma`): what the models, the exposure decision and
  the metrics mean by brightness;
- the grey of OpenCV's ``RGB2GRAY`` (:data:`GREY_WEIGHTS`, BT.601): what the noise is measured on;
- the YCbCr matrices and ranges of video (:func:`luma_weights`, :func:`range_scales`,
  :func:`ycc_to_rgb`, :func:`rgb_to_ycc`), named as swscale names them, and the stream tags
  that select them (:func:`swscale_colorspace`, :func:`effective_range`);
- MATLAB's ``rgb2ycbcr`` luma (:func:`matlab_y`), the "Y" of enhancement papers' PSNR.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "GREY_WEIGHTS",
    "LUMA_BY_MATRIX",
    "LUMA_WEIGHTS",
    "RANGE_JPEG",
    "RANGE_MPEG",
    "effective_range",
    "grey",
    "luma",
    "luma_weights",
    "matlab_y",
    "plain_pix_fmt",
    "range_scales",
    "rgb_to_ycc",
    "swscale_colorspace",
    "ycc_to_rgb",
    "ycc_to_rgb_levels",
]

LUMA_WEIGHTS = (0.2126, 0.7152, 0.0722)
"""Rec.709 luma weights of R, G and B."""


def luma(x: Tensor) -> Tensor:
    """Rec.709 luma of RGB with channels at dim −3 (N×3×H×W → N×1×H×W, 3×H×W → 1×H×W).

    Weighted with Python numbers, not a tensor: no host-to-device copy, so it can run inside a
    CUDA graph (the exposure gate and the guided upsampling call it there)."""
    red, green, blue = LUMA_WEIGHTS
    return red * x.narrow(-3, 0, 1) + green * x.narrow(-3, 1, 1) + blue * x.narrow(-3, 2, 1)


GREY_WEIGHTS = (0.299, 0.587, 0.114)
"""BT.601 weights of OpenCV's ``RGB2GRAY``: the grey image the noise is measured on."""


def grey(x: Tensor) -> Tensor:
    """OpenCV's ``RGB2GRAY`` grey (:data:`GREY_WEIGHTS`) of RGB with channels at dim −3, shaped
    as :func:`luma`; Python-number weights, as there (CUDA-graph capturable)."""
    red, green, blue = GREY_WEIGHTS
    return red * x.narrow(-3, 0, 1) + green * x.narrow(-3, 1, 1) + blue * x.narrow(-3, 2, 1)


LUMA_BY_MATRIX = {
    "itu601": (0.299, 0.587, 0.114),
    "itu709": (0.2126, 0.7152, 0.0722),
    "fcc": (0.30, 0.59, 0.11),
    "smpte240m": (0.212, 0.701, 0.087),
    "bt2020": (0.2627, 0.6780, 0.0593),
}
"""Luma weights (Kr, Kg, Kb) of each swscale matrix name."""

RANGE_UNSPECIFIED = 0
RANGE_MPEG = 1
RANGE_JPEG = 2

# AVColorSpace values (libavutil/pixfmt.h) → swscale's matrix names.
_MATRIX_BY_AVCOL_SPC = {
    1: "itu709",  # BT709
    4: "fcc",  # FCC
    5: "itu601",  # BT470BG
    6: "itu601",  # SMPTE170M
    7: "smpte240m",  # SMPTE240M
    9: "bt2020",  # BT2020_NCL
    10: "bt2020",  # BT2020_CL
}


def swscale_colorspace(avcol_spc: int) -> str:
    """The matrix to convert with; unspecified means BT.601, as FFmpeg's own tools assume."""
    return _MATRIX_BY_AVCOL_SPC.get(int(avcol_spc), "itu601")


def effective_range(color_range: int, pix_fmt: str) -> int:
    """The range to convert with: the tagged one, else full for ``yuvj*``/RGB, else limited."""
    if int(color_range) in (RANGE_MPEG, RANGE_JPEG):
        return int(color_range)
    if pix_fmt.startswith("yuvj") or not pix_fmt.startswith(("yuv", "nv", "p0", "p2")):
        return RANGE_JPEG
    return RANGE_MPEG


def plain_pix_fmt(pix_fmt: str) -> str:
    """``yuvj420p`` → ``yuv420p``: the deprecated full-range aliases become a range tag."""
    return "yuv" + pix_fmt[4:] if pix_fmt.startswith("yuvj") else pix_fmt


def luma_weights(matrix: str) -> tuple[float, float, float]:
    """(Kr, Kg, Kb) of a swscale matrix (BT.601 for names it does not know, as swscale)."""
    return LUMA_BY_MATRIX.get(matrix, LUMA_BY_MATRIX["itu601"])


def range_scales(color_range: int) -> tuple[float, float, float]:
    """(luma black, luma span, chroma span) in code values: limited 16/219/224, full 0/255/255."""
    return (0.0, 255.0, 255.0) if color_range == RANGE_JPEG else (16.0, 219.0, 224.0)


def ycc_to_rgb(matrix: str, color_range: int) -> np.ndarray:
    """3×4 affine map from (Y, Cb, Cr) code values to RGB in [0, 1] (for ``cv2.transform``)."""
    kr, kg, kb = luma_weights(matrix)
    black, luma_span, chroma_span = range_scales(color_range)
    rgb_from_ycc = np.array(
        [
            [1.0, 0.0, 2.0 * (1.0 - kr)],
            [1.0, -2.0 * kb * (1.0 - kb) / kg, -2.0 * kr * (1.0 - kr) / kg],
            [1.0, 2.0 * (1.0 - kb), 0.0],
        ]
    )
    scale = np.diag([1.0 / luma_span, 1.0 / chroma_span, 1.0 / chroma_span])
    linear = rgb_from_ycc @ scale
    offset = -linear @ np.array([black, 128.0, 128.0])
    return np.concatenate([linear, offset[:, None]], axis=1).astype(np.float32)


def ycc_to_rgb_levels(matrix: str, color_range: int) -> np.ndarray:
    """3×3 map from (Y, Cb, Cr) code-value differences to RGB differences in 8-bit levels."""
    return np.ascontiguousarray(ycc_to_rgb(matrix, color_range)[:, :3] * 255.0)


def rgb_to_ycc(matrix: str, color_range: int) -> np.ndarray:
    """3×4 affine map from RGB in [0, 1] to (Y, Cb, Cr) code values (the inverse of :func:`ycc_to_rgb`)."""
    forward = ycc_to_rgb(matrix, color_range).astype(np.float64)
    linear = np.linalg.inv(forward[:, :3])
    offset = -linear @ forward[:, 3]
    return np.concatenate([linear, offset[:, None]], axis=1).astype(np.float32)


def matlab_y(rgb8: Tensor) -> Tensor:
    """MATLAB ``rgb2ycbcr`` luma (16…235) of 8-bit RGB code values, N×3×H×W → N×1×H×W float64."""
    weights = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64, device=rgb8.device).view(1, 3, 1, 1)
    return (rgb8.to(torch.float64) / 255.0 * weights).sum(1, keepdim=True) + 16.0

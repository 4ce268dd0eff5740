"""Colour metadata: which YUV↔RGB matrix and range a frame uses, as swscale understands them."""

from __future__ import annotations

__all__ = ["RANGE_MPEG", "RANGE_JPEG", "swscale_colorspace", "effective_range", "plain_pix_fmt"]

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

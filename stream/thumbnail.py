"""The low-resolution frame γ is estimated from, on the CPU 8-bit paths, with OpenCV.

:meth:`sagc.models.Enhancer.downscale` averages ``scale`` × ``scale`` blocks from the top-left
corner (``avg_pool2d`` with ``ceil_mode``), so where the size is not a multiple of the scale the
last row and column of blocks average the pixels they hold. ``cv2.resize`` with ``INTER_AREA``
spreads the cells evenly over the picture instead, which moves the thumbnail's content by up to
half a block there, and a frame on the exposure gate's ramp can then be decided differently.
:func:`block_means` averages the same blocks as the float path.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["block_means"]


def block_means(image: np.ndarray, factor: int) -> np.ndarray:
    """``image`` (H×W or H×W×C, uint8 or float32) averaged over ``factor`` × ``factor`` blocks
    from the top-left, the last row and column of blocks over the pixels they hold:
    ceil(H / factor) × ceil(W / factor), the input's dtype (uint8 rounded)."""
    height, width = image.shape[:2]
    if factor <= 1:
        return image
    full_h, full_w = height // factor * factor, width // factor * factor
    rows, cols = -(-height // factor), -(-width // factor)
    out = np.empty((rows, cols, *image.shape[2:]), image.dtype)
    parts = (
        (slice(0, full_h), slice(0, full_w)),
        (slice(full_h, height), slice(0, full_w)),
        (slice(0, full_h), slice(full_w, width)),
        (slice(full_h, height), slice(full_w, width)),
    )
    for part_rows, part_cols in parts:
        block = image[part_rows, part_cols]
        if block.size == 0:
            continue
        cells = (-(-block.shape[1] // factor), -(-block.shape[0] // factor))  # (width, height) in blocks
        first_row, first_col = part_rows.start // factor, part_cols.start // factor
        means = cv2.resize(np.ascontiguousarray(block), cells, interpolation=cv2.INTER_AREA)
        out[first_row : first_row + cells[1], first_col : first_col + cells[0]] = means.reshape(
            cells[1], cells[0], *image.shape[2:]
        )
    return out

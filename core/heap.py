"""Keep frame-sized buffers in the heap: glibc's mmap and trim thresholds raised once per process."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys

__all__ = ["keep_frame_buffers_in_heap"]

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

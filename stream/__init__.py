"""Streaming: frame sources, encoder sinks, and the source → enhancer → sink pipeline."""

# OpenCV must load before PyAV: PyAV's wheels bundle their own libxcb, and when that copy is
# loaded first OpenCV's Qt window (``sagc preview``) livelocks in cv2.imshow (PyAV issue #978).
import cv2  # noqa: F401

"""Where a frame's milliseconds go: named steps timed per frame, summarised as p50/p95.

A :class:`StepTimer` is handed to the parts of a pipeline that can report their steps (the
decoder's conversion to RGB, the CPU stage's downscale, estimate, noise reduction, upsampling
and exponent, the encoder's conversion back); ``sagc bench`` prints the summary so the
bottleneck shows without a profiler. Without a timer the parts time nothing.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

__all__ = ["StepTimer", "percentiles", "step"]


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 and p95 of ``samples`` (seconds) in milliseconds; zeros for none."""
    if not samples:
        return {"p50": 0.0, "p95": 0.0}
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {"p50": round(statistics.median(ordered) * 1e3, 3), "p95": round(p95 * 1e3, 3)}


class StepTimer:
    """Durations per step name, from any thread (each step is timed where it runs)."""

    def __init__(self) -> None:
        self._samples: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self._samples.setdefault(name, []).append(elapsed)

    def summary(self, *, skip: int = 0) -> dict[str, dict[str, float]]:
        """p50/p95 milliseconds per step, in the order the steps were first seen, leaving out
        each step's first ``skip`` samples (warm-up)."""
        with self._lock:
            return {name: percentiles(samples[skip:]) for name, samples in self._samples.items()}


def step(timer: StepTimer | None, name: str) -> AbstractContextManager[None]:
    """``timer(name)``, or a no-op context when there is no timer."""
    return nullcontext() if timer is None else timer(name)

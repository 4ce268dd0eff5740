"""Bounded queues between threads that give up when asked to stop."""

from __future__ import annotations

import queue
import threading
from typing import Any

__all__ = ["POLL", "offer"]

POLL = 0.05
"""Seconds a blocked put or get waits before it looks at its stop flag again."""


def offer(q: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put ``item`` into the bounded queue ``q``, waiting while it is full, unless ``stop`` is
    set first; returns whether the item went in."""
    while not stop.is_set():
        try:
            q.put(item, timeout=POLL)
            return True
        except queue.Full:
            continue
    return False

"""TensorBoard logging that degrades to a logged notice when tensorboard is not installed."""

from __future__ import annotations

import logging
from pathlib import Path

from torch import Tensor

__all__ = ["SummaryLogger"]

log = logging.getLogger(__name__)


class SummaryLogger:
    """Scalars and image grids under ``folder``; a no-op (with one notice) without tensorboard."""

    def __init__(self, folder: str | Path, *, enabled: bool = True) -> None:
        self._writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.warning("tensorboard is not installed (pip install -e '.[train]'); curves not logged")
            return
        self._writer = SummaryWriter(log_dir=str(folder))

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self._writer is not None:
            self._writer.add_scalar(tag, value, step)

    def images(self, tag: str, grid: Tensor, step: int) -> None:
        """``grid``: 3×H×W in [0, 1]."""
        if self._writer is not None:
            self._writer.add_image(tag, grid.clamp(0, 1), step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

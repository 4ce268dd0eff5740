"""Training-state plumbing shared by the trainers: RNG capture, epoch order, atomic saves.

A training checkpoint holds plain tensors and Python values only, so it loads with
``weights_only=True`` and ``--resume`` continues bit-exactly (same batches, same dropout).
"""

from __future__ import annotations

import os
import platform
import random
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from sagc.core.errors import SagcError, first_line
from sagc.models.checkpoint import atomic_save

__all__ = [
    "Stateful",
    "capture_rng",
    "epoch_order",
    "load_state",
    "restore_rng",
    "resume_training",
    "run_provenance",
    "save_state",
    "save_training",
    "seed_everything",
]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (called once in the trainer's main, never at import)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _numpy_state() -> dict[str, Any]:
    state = np.random.get_state(legacy=False)
    inner = dict(state["state"])
    inner["key"] = [int(v) for v in inner["key"]]
    return {**state, "state": inner}


def capture_rng() -> dict[str, Any]:
    """The global RNG states (torch CPU/CUDA, NumPy, Python) as loadable plain values."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state(),
        "python": list(random.getstate()[1]) + [random.getstate()[0], random.getstate()[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {**numpy_state["state"], "key": np.asarray(numpy_state["state"]["key"], np.uint32)}
    np.random.set_state(numpy_state)
    values = state["python"]
    random.setstate((values[-2], tuple(values[:-2]), values[-1]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def epoch_order(length: int, *, seed: int, epoch: int) -> list[int]:
    """The sample order of one epoch, a pure function of (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(length, generator=g).tolist()


def save_state(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write a training state atomically."""
    return atomic_save(state, path)


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training state saved by :func:`save_state` (``weights_only=True``)."""
    if not Path(path).is_file():
        raise SagcError(f"nothing to resume: {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SagcError(f"{path} is not a sagc training state ({first_line(exc)})") from exc


class Stateful(Protocol):
    """Anything with ``state_dict``/``load_state_dict``: models, optimisers, schedulers."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


def save_training(path: str | os.PathLike[str], parts: Mapping[str, Stateful | None], **values: Any) -> Path:
    """Checkpoint a run: every named part's ``state_dict`` (None for an absent part), the RNG
    states and ``values`` (step, best score, config), atomically."""
    state = {name: part.state_dict() if part is not None else None for name, part in parts.items()}
    return save_state(path, {**state, **values, "rng": capture_rng()})


def resume_training(path: str | os.PathLike[str], parts: Mapping[str, Stateful | None]) -> dict[str, Any]:
    """Load what :func:`save_training` wrote into ``parts`` (those present in both), restore the
    RNG states and return the other values, so the run continues exactly."""
    state = load_state(path)
    for name, part in parts.items():
        if part is not None and state.get(name) is not None:
            part.load_state_dict(state[name])
    restore_rng(state["rng"])
    return {key: value for key, value in state.items() if key not in parts and key != "rng"}


def run_provenance() -> dict[str, Any]:
    """Command line, git commit, library versions and hardware of this run (plain values)."""
    try:
        here = Path(__file__).resolve().parent  # the checkout sagc runs from, not the cwd
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    hardware = f"{os.cpu_count()} CPU cores ({platform.machine()})"
    if torch.cuda.is_available():
        hardware += f", {torch.cuda.get_device_name(0)}"
    return {
        "command": " ".join(["sagc" if i == 0 else a for i, a in enumerate(sys.argv)]),
        "git_commit": commit,
        "torch": str(torch.__version__),
        "hardware": hardware,
    }

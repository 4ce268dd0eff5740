"""Checkpoint format for enhancers: architecture, weights and provenance in one file.

A checkpoint is a plain dict, loadable with ``torch.load(..., weights_only=True)``::

    {"format": 1, "kind": "sagc.enhancer", "arch": {"width": 32},
     "runtime": {"scale": 1.0, "gain": 1.0, "denoise": 0.0, "gate": False, "guide": 0.0, "smooth": 0.0},
     "state_dict": {...},
     "provenance": {...}}

``provenance`` records what produced the weights (config, data, metrics, command, git commit);
it must hold only plain Python values so the file stays safe to load.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from sagc.core.atomic import atomic_write
from sagc.core.errors import SagcError, first_line

from .cue import CUE_KIND, ContentCue
from .gamma import Enhancer, GammaEstimator
from .settings import RuntimeSettings

__all__ = [
    "FORMAT_VERSION",
    "atomic_save",
    "save_checkpoint",
    "ENHANCER_KIND",
    "save_enhancer",
    "load_enhancer",
    "load_checkpoint",
    "resolve_weights",
    "named_weights",
    "packaged_cue",
]

FORMAT_VERSION = 1
ENHANCER_KIND = "sagc.enhancer"


def named_weights() -> dict[str, Path]:
    """Checkpoints installed with the package, by name (``default`` once it ships)."""
    folder = resources.files("sagc.weights")
    found: dict[str, Path] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".pt"):
            found[entry.name[: -len(".pt")]] = Path(str(entry))
    return found


def resolve_weights(path_or_name: str | os.PathLike[str]) -> Path:
    """Turn a file path or an installed weights name into an existing file path."""
    text = os.fspath(path_or_name)
    candidate = Path(text)
    if candidate.is_file():
        return candidate
    installed = named_weights()
    if text in installed:
        return installed[text]
    if text == "default":
        raise SagcError(
            "no default weights are installed in this copy of sagc; pass --weights PATH "
            "to a checkpoint made by `sagc train enhancer`"
        )
    if candidate.is_dir():
        raise SagcError(f"weights path {text} is a directory; pass a checkpoint file (.pt)")
    hint = f" (installed: {', '.join(sorted(installed))})" if installed else ""
    raise SagcError(f"weights file not found: {text}; pass a checkpoint path or a name{hint}")


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    kind: str,
    arch: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    runtime: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint dict of ``kind`` atomically (temporary file, then rename)."""
    checkpoint = {
        "format": FORMAT_VERSION,
        "kind": kind,
        "arch": dict(arch),
        "runtime": dict(runtime or {}),
        "state_dict": {k: v.detach().cpu().clone() for k, v in state_dict.items()},
        "provenance": dict(provenance or {}),
    }
    return atomic_save(checkpoint, path)


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename: never a half-written file."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def estimator_arch(estimator: GammaEstimator) -> dict[str, int | bool]:
    """The constructor arguments that rebuild ``estimator`` (``context`` and ``white_point``
    only when used)."""
    arch: dict[str, int | bool] = {"width": estimator.width}
    if estimator.context:
        arch["context"] = estimator.context
    if estimator.white_point:
        arch["white_point"] = True
    return arch


def save_enhancer(
    path: str | os.PathLike[str],
    estimator: GammaEstimator,
    settings: RuntimeSettings | None = None,
    *,
    provenance: Mapping[str, Any] | None = None,
    **changes: Any,
) -> Path:
    """Write ``estimator`` with its run-time settings (``settings`` with ``changes`` applied)
    and provenance, atomically."""
    return save_checkpoint(
        path,
        kind=ENHANCER_KIND,
        arch=estimator_arch(estimator),
        state_dict=estimator.state_dict(),
        runtime=(settings or RuntimeSettings()).replace(**changes).as_dict(),
        provenance=provenance,
    )


def load_checkpoint(path_or_name: str | os.PathLike[str], *, kind: str | None = ENHANCER_KIND) -> dict[str, Any]:
    """Load and validate a checkpoint dict of ``kind`` (any sagc kind when None), ``weights_only=True``."""
    path = resolve_weights(path_or_name)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found is None:
            raise SagcError(f"{path} is not a sagc checkpoint (it is not a readable torch file)") from None
        raise SagcError(
            f"{path} holds a Python object ({found.group(1)}) besides tensors and plain values, and loading "
            "it could run code; sagc refuses it: use a checkpoint written by sagc"
        ) from None
    except Exception as exc:  # any parse failure means "not a checkpoint" to the user
        raise SagcError(f"{path} is not a sagc checkpoint (torch.load failed: {first_line(exc)})") from exc
    found_kind = checkpoint.get("kind") if isinstance(checkpoint, dict) else None
    if not isinstance(found_kind, str) or not (found_kind == kind or (kind is None and found_kind.startswith("sagc."))):
        found = checkpoint.get("kind") if isinstance(checkpoint, dict) else type(checkpoint).__name__
        noun = kind.removeprefix("sagc.") if kind else "model"
        raise SagcError(f"{path} is not a sagc {noun} checkpoint (found kind {found!r})")
    if checkpoint.get("format") != FORMAT_VERSION:
        raise SagcError(
            f"{path} uses checkpoint format {checkpoint.get('format')!r}; this sagc reads format {FORMAT_VERSION}"
        )
    return checkpoint


def load_enhancer(path_or_name: str | os.PathLike[str] = "default", **overrides: Any) -> Enhancer:
    """Build an :class:`Enhancer` in eval mode from a checkpoint path or installed name.

    ``overrides`` (any :class:`~sagc.models.settings.RuntimeSettings` field; None keeps the
    checkpoint's) change the run-time settings stored in the checkpoint; settings a checkpoint
    does not mention load as off.
    """
    where = resolve_weights(path_or_name)
    checkpoint = load_checkpoint(where)
    arch, state, runtime = (checkpoint.get(key) for key in ("arch", "state_dict", "runtime"))
    if not isinstance(arch, dict) or not isinstance(state, dict):
        raise SagcError(f"{where} is incomplete: it needs an 'arch' and a 'state_dict' dict; re-save it with sagc")
    try:  # the checkpoint's settings, then the caller's overrides: either may be out of range
        stored = RuntimeSettings.from_mapping({} if runtime is None else runtime, where=f"{where}: runtime")
        settings = stored.replace(**overrides)
    except ValueError as exc:
        raise SagcError(str(exc)) from exc
    try:
        estimator = GammaEstimator(**arch)
    except (TypeError, ValueError) as exc:
        raise SagcError(f"{where} has an unknown architecture {arch!r}: {exc}") from exc
    try:
        estimator.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).splitlines()[0]
        raise SagcError(f"{where}: weights do not match the GammaEstimator architecture: {first}") from exc
    broken = [name for name, tensor in estimator.state_dict().items() if not torch.isfinite(tensor).all()]
    if broken:
        raise SagcError(
            f"{where} holds non-finite weights (NaN or inf in {', '.join(broken[:3])}); "
            "it cannot enhance anything: use another checkpoint"
        )
    return Enhancer(estimator, settings, content_cue=packaged_cue()).eval().requires_grad_(False)


def packaged_cue() -> ContentCue:
    """The exposure decision's content cue installed with the package
    (``sagc/weights/content_cue.pt``, trained on CamVid train and SICE by :mod:`sagc.train.cue`),
    frozen, in eval mode."""
    checkpoint = load_checkpoint("content_cue", kind=CUE_KIND)
    cue = ContentCue(**checkpoint["arch"])
    cue.load_state_dict(checkpoint["state_dict"])
    return cue.eval().requires_grad_(False)

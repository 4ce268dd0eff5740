"""Optional dependencies: which extra brings each one, and one clear error when it is missing."""

from __future__ import annotations

import importlib.util

from sagc.core.errors import SagcError

__all__ = ["EXTRAS", "missing_extra", "require"]

# top-level module → the extra of `pip install "sagc[EXTRA]"` that installs it
EXTRAS = {
    "yaml": "train",
    "tensorboard": "train",
    "scipy": "eval",
    "lpips": "eval",
    "matplotlib": "eval",
    "onnxscript": "export",
    "ray": "ray",
}


def missing_extra(module: str, purpose: str) -> SagcError:
    """The error for ``purpose`` (e.g. ``sagc eval video``) needing the missing ``module``."""
    top = module.split(".")[0]
    extra = EXTRAS.get(top)
    how = f'pip install "sagc[{extra}]"' if extra else f"pip install {top}"
    return SagcError(f"{purpose} needs {top}, which is not installed: {how}")


def require(*modules: str, purpose: str) -> None:
    """Raise :func:`missing_extra`'s error for the first of ``modules`` that cannot be imported."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing, or blocked in sys.modules
            found = False
        if not found:
            raise missing_extra(module, purpose)

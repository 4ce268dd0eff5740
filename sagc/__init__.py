"""sagc: real-time low-light enhancement with Semantic-Aware Gamma Correction.

The public names load on first use (PEP 562), so ``import sagc`` and the command line start
without loading torch, and a Ctrl-C while the libraries load ends the command quietly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sagc.core import __version__

__all__ = [
    "Enhancer",
    "GammaEstimator",
    "SagcError",
    "__version__",
    "apply_gamma",
    "load_enhancer",
    "save_enhancer",
]

_HOMES = {
    "Enhancer": "sagc.models",
    "GammaEstimator": "sagc.models",
    "apply_gamma": "sagc.models",
    "load_enhancer": "sagc.models",
    "save_enhancer": "sagc.models",
    "SagcError": "sagc.core.errors",
}

if TYPE_CHECKING:
    from sagc.core.errors import SagcError
    from sagc.models import Enhancer, GammaEstimator, apply_gamma, load_enhancer, save_enhancer


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'sagc' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

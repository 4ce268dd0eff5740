"""sagc: real-time low-light enhancement with Semantic-Aware Gamma Correction."""

from sagc.errors import SagcError
from sagc.models import Enhancer, GammaEstimator, apply_gamma, load_enhancer, save_enhancer

__version__ = "0.1.0"

__all__ = [
    "Enhancer",
    "GammaEstimator",
    "SagcError",
    "__version__",
    "apply_gamma",
    "load_enhancer",
    "save_enhancer",
]

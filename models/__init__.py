"""Networks: the SAGC gamma estimator, the enhancer and the checkpoint format."""

from .bilateral import bilateral_filter
from .checkpoint import load_checkpoint, load_enhancer, named_weights, resolve_weights, save_enhancer
from .gamma import ApplyGamma, Enhancer, GammaEstimator, apply_gamma

__all__ = [
    "ApplyGamma",
    "Enhancer",
    "GammaEstimator",
    "apply_gamma",
    "bilateral_filter",
    "load_checkpoint",
    "load_enhancer",
    "named_weights",
    "resolve_weights",
    "save_enhancer",
]

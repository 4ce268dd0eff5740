"""Networks: the SAGC gamma estimator, the enhancer and the checkpoint format."""

from sagc.ops.denoise import bilateral_filter, noise_level, reduce_noise

from .checkpoint import load_checkpoint, load_enhancer, named_weights, resolve_weights, save_enhancer
from .gamma import ApplyGamma, Enhancer, GammaEstimator, apply_gamma
from .gate import ExposureGate
from .settings import RuntimeSettings

__all__ = [
    "ApplyGamma",
    "Enhancer",
    "ExposureGate",
    "RuntimeSettings",
    "GammaEstimator",
    "apply_gamma",
    "bilateral_filter",
    "noise_level",
    "reduce_noise",
    "load_checkpoint",
    "load_enhancer",
    "named_weights",
    "resolve_weights",
    "save_enhancer",
]

"""sagc: real-time low-light enhancement with Semantic-Aware Gamma Correction."""

# OpenCV must load before PyAV: PyAV's wheels bundle their own libxcb, and when that copy is
# loaded first OpenCV's Qt window (``sagc preview``) livelocks in cv2.imshow (PyAV issue #978).
import cv2  # noqa: F401, I001  - import order is the point

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

"""NIQE (Mittal et al., "Making a completely blind image quality analyzer"), lower is better.

The MATLAB-equivalent variant the field reports (BasicSR's ``calculate_niqe``): the Y channel of
MATLAB's ``rgb2ycbcr`` on 8-bit values, rounded; no border crop; 96×96 blocks without overlap;
two scales (the second made with MATLAB's antialiased bicubic ``imresize`` by 0.5); 18
natural-scene-statistics features per block and scale (AGGD fits of the normalised luminance
and of its products with the four neighbours, circular within the block); the distance of
the images' multivariate Gaussian to the pristine model's. Batched torch, float64, any device.

The pristine model ships with the package (``niqe_pris_params.npz``, Apache-2.0, see
``NIQE_NOTICE.txt``); ``load_niqe_params`` also reads the paper's ``.mat`` (``mean``/``cov``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sagc.core.errors import SagcError

from .metrics import matlab_y

__all__ = ["NiqeParams", "load_niqe_params", "niqe", "matlab_resize_half"]

_BLOCK = 96
# 7×7 Gaussian (σ 7/6), the window of the official code, as stored in the pristine model file.
_WINDOW_SIGMA = 7.0 / 6.0


@dataclass(frozen=True)
class NiqeParams:
    """The pristine multivariate Gaussian: 36-vector mean and 36×36 covariance (float64)."""

    mean: Tensor
    cov: Tensor
    window: Tensor  # 7×7 smoothing window


def _gaussian_window() -> Tensor:
    offsets = torch.arange(-3, 4, dtype=torch.float64)
    g = torch.exp(-0.5 * (offsets / _WINDOW_SIGMA) ** 2)
    w = torch.outer(g, g)
    return w / w.sum()


def load_niqe_params(path: str | Path | None = None) -> NiqeParams:
    """Pristine model from ``path`` (``.npz`` like the packaged one, or the paper's ``.mat``).

    ``None`` loads the packaged ``niqe_pris_params.npz``.
    """
    if path is None:
        with resources.files("sagc.eval").joinpath("niqe_pris_params.npz").open("rb") as handle:
            return _from_npz(handle, "the packaged niqe_pris_params.npz")
    path = Path(path)
    if not path.is_file():
        raise SagcError(f"NIQE parameters {path} not found: pass an .npz (mu_pris_param, cov_pris_param) or .mat")
    if path.suffix.lower() == ".mat":
        try:
            from scipy.io import loadmat
        except ImportError as exc:  # pragma: no cover - scipy is in the eval extra
            raise SagcError("reading .mat NIQE parameters needs scipy: pip install -e '.[eval]'") from exc
        data = loadmat(str(path))
        if "mean" not in data or "cov" not in data:
            raise SagcError(f"{path} has no 'mean' and 'cov' arrays: not a NIQE model file")
        return _make_params(np.asarray(data["mean"]), np.asarray(data["cov"]), None, str(path))
    with path.open("rb") as handle:
        return _from_npz(handle, str(path))


def _from_npz(handle, name: str) -> NiqeParams:
    try:
        data = np.load(handle)
        mean, cov = data["mu_pris_param"], data["cov_pris_param"]
        window = data["gaussian_window"] if "gaussian_window" in data else None
    except (KeyError, ValueError, OSError) as exc:
        raise SagcError(f"{name} is not a NIQE model file (needs mu_pris_param and cov_pris_param)") from exc
    return _make_params(mean, cov, window, name)


def _make_params(mean: np.ndarray, cov: np.ndarray, window: np.ndarray | None, name: str) -> NiqeParams:
    mean_t = torch.from_numpy(np.asarray(mean, dtype=np.float64)).reshape(-1)
    cov_t = torch.from_numpy(np.asarray(cov, dtype=np.float64))
    if mean_t.numel() != 36 or tuple(cov_t.shape) != (36, 36):
        raise SagcError(f"{name}: expected a 36-vector mean and 36×36 covariance, got {mean.shape} and {cov.shape}")
    win = torch.from_numpy(np.asarray(window, dtype=np.float64)) if window is not None else _gaussian_window()
    return NiqeParams(mean_t, cov_t, win)


@functools.cache
def _default_params() -> NiqeParams:
    return load_niqe_params()


def _cubic(x: Tensor) -> Tensor:
    a = x.abs()
    a2, a3 = a * a, a * a * a
    near = (1.5 * a3 - 2.5 * a2 + 1) * (a <= 1)
    far = (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * ((a > 1) & (a <= 2))
    return near + far


@functools.cache
def _half_matrix(length: int) -> Tensor:
    """out×in matrix of MATLAB's antialiased bicubic ``imresize`` by 0.5 with symmetric borders."""
    scale = 0.5
    out_length = math.ceil(length * scale)
    width = 4.0 / scale
    u = torch.arange(1, out_length + 1, dtype=torch.float64) / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    index = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    weights = scale * _cubic((u[:, None] - index) * scale)
    weights = weights / weights.sum(1, keepdim=True)
    index = index.long() - 1  # MATLAB is 1-based
    index = torch.where(index < 0, -index - 1, index)
    index = torch.where(index >= length, 2 * length - 1 - index, index)
    matrix = torch.zeros(out_length, length, dtype=torch.float64)
    matrix.scatter_add_(1, index, weights)
    return matrix


def matlab_resize_half(image: Tensor) -> Tensor:
    """MATLAB ``imresize(image, 0.5)`` (bicubic, antialiased) of …×H×W float64 images."""
    rows = _half_matrix(image.shape[-2]).to(image.device)
    cols = _half_matrix(image.shape[-1]).to(image.device)
    return rows @ image @ cols.T


@functools.cache
def _gamma_table(device: torch.device) -> tuple[Tensor, Tensor]:
    shape = 0.2 + 0.001 * torch.arange(9801, dtype=torch.float64, device=device)
    ratio = torch.exp(2 * torch.lgamma(2 / shape) - torch.lgamma(1 / shape) - torch.lgamma(3 / shape))
    return shape, ratio


def _aggd(blocks: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Asymmetric generalised Gaussian fit per block (B×h×w) → (alpha, beta_left, beta_right)."""
    flat = blocks.flatten(1)
    neg, pos = flat < 0, flat > 0
    sq = flat * flat
    left_std = torch.sqrt((sq * neg).sum(1) / neg.sum(1))
    right_std = torch.sqrt((sq * pos).sum(1) / pos.sum(1))
    ghat = left_std / right_std
    rhat = flat.abs().mean(1) ** 2 / sq.mean(1)
    rnorm = rhat * (ghat**3 + 1) * (ghat + 1) / (ghat**2 + 1) ** 2
    shapes, ratios = _gamma_table(blocks.device)
    alpha = shapes[((ratios[None, :] - rnorm[:, None]) ** 2).argmin(1)]
    # NaN fits (a block without negative or positive values) stay NaN, as in the reference.
    alpha = torch.where(torch.isnan(rnorm), torch.full_like(alpha, math.nan), alpha)
    spread = torch.exp(0.5 * (torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha)))
    return alpha, left_std * spread, right_std * spread


_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _features(blocks: Tensor) -> Tensor:
    """The 18 NIQE features of each normalised block (B×h×w) → B×18."""
    alpha, left, right = _aggd(blocks)
    feats = [alpha, (left + right) / 2]
    for shift in _SHIFTS:
        alpha, left, right = _aggd(blocks * torch.roll(blocks, shifts=shift, dims=(1, 2)))
        mean = (right - left) * torch.exp(torch.lgamma(2 / alpha) - torch.lgamma(1 / alpha))
        feats += [alpha, mean, left, right]
    return torch.stack(feats, 1)


def _normalised(image: Tensor, window: Tensor) -> Tensor:
    """(I − μ)/(σ + 1) with local Gaussian statistics, replicate borders (H×W float64)."""
    kernel = window.to(image)[None, None]
    pad = kernel.shape[-1] // 2
    x = image[None, None]
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    padded_sq = F.pad(x * x, (pad, pad, pad, pad), mode="replicate")
    mu = F.conv2d(padded, kernel)
    sigma = torch.sqrt((F.conv2d(padded_sq, kernel) - mu * mu).abs())
    return ((x - mu) / (sigma + 1))[0, 0]


def _blocks(image: Tensor, size: int, rows: int, cols: int) -> Tensor:
    image = image[: rows * size, : cols * size]
    return image.reshape(rows, size, cols, size).permute(0, 2, 1, 3).reshape(rows * cols, size, size)


def _niqe_y(y: Tensor, params: NiqeParams) -> Tensor:
    rows, cols = y.shape[0] // _BLOCK, y.shape[1] // _BLOCK
    if rows == 0 or cols == 0:
        raise ValueError(f"NIQE needs images of at least {_BLOCK}×{_BLOCK} pixels, got {tuple(y.shape)}")
    y = y[: rows * _BLOCK, : cols * _BLOCK]
    per_scale = []
    for scale in (1, 2):
        per_scale.append(_features(_blocks(_normalised(y, params.window), _BLOCK // scale, rows, cols)))
        if scale == 1:
            y = matlab_resize_half(y / 255.0) * 255.0
    feats = torch.cat(per_scale, 1)
    mean = torch.nanmean(feats, 0)
    complete = feats[~torch.isnan(feats).any(1)]
    if complete.shape[0] < 2:  # a covariance needs two blocks (the reference would fail here)
        return torch.tensor(math.nan, dtype=feats.dtype, device=feats.device)
    cov = torch.cov(complete.T)
    diff = (params.mean.to(feats) - mean)[None]
    inverse = torch.linalg.pinv((params.cov.to(feats) + cov) / 2)
    return torch.sqrt((diff @ inverse @ diff.T).squeeze())


def niqe(images: Tensor, *, params: NiqeParams | None = None) -> Tensor:
    """Per-image NIQE of N×3×H×W RGB in [0, 1] (quantised to 8 bits first) or N×1×H×W grey.

    At least 96×96 pixels; only whole 96-pixel blocks count (the rest is cropped, as the
    reference does), and an image with fewer than two usable blocks scores NaN (undefined).
    Returns N float64 values.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected N×3×H×W or N×1×H×W images, got {tuple(images.shape)}")
    params = params if params is not None else _default_params()
    code = torch.round(images.to(torch.float64).clamp(0, 1) * 255.0)
    y = torch.round(matlab_y(code)) if code.shape[1] == 3 else code
    return torch.stack([_niqe_y(y[i, 0], params) for i in range(y.shape[0])])

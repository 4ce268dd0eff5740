"""Exposure normalised to the white point: what makes the γ estimate independent of the light.

A capture in less light is, to first order, the same picture with every linear value scaled
down; the camera's tone curve then turns that scale into a scale of the encoded values too (a
power curve keeps scales scales). Dividing a frame by its white point — the 99th percentile of
its low-resolution luma — undoes that scale: the same street darkened to dusk and to deep night
normalises to nearly the same picture, and a well-exposed frame, whose white point is already
near 1, is left as it is. The network sees the normalised frame, so what it makes of a scene
does not depend on how dark the capture was; its exponent γₙ for the normalised frame is turned
into one for the frame itself::

    x_n = min(1, x / w),    y = x_n ** γₙ = x ** γ,    γ = γₙ · log(x_n) / log(x)

(the factor is in [0, 1]: it carries the lift the normalisation gave). Estimation resolution
only: the full-resolution frame gets γ upsampled, as any other γ map.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from sagc.ops.colour import luma

__all__ = [
    "MIN_WHITE",
    "WHITE_QUANTILE",
    "exposure_levels",
    "headroom",
    "exponent_of_normalised",
    "host_eager",
    "normalise_exposure",
    "quantiles",
    "white_point",
]

WHITE_QUANTILE = 0.99
MIN_WHITE = 1.0 / 32.0  # the normalisation lifts by at most 5 stops
_EPS = 1e-4  # as the exponent's own floor (sagc.ops.gamma.DEFAULT_EPS)


def quantiles(values: Tensor, qs: tuple[float, ...]) -> list[Tensor]:
    """The ``qs`` quantiles along the last dimension of an N×M tensor with linear interpolation
    (as ``torch.quantile``). On the CPU outside export and autograd, in NumPy on the host
    (the order statistics they need, :func:`_selected_quantiles`); elsewhere from one sort and
    tensor indices: exportable with a symbolic M, and free of host round trips (CUDA graphs)."""
    if host_eager(values):
        return _selected_quantiles(values, qs)
    ordered = values.sort(dim=-1).values
    last = torch.arange(values.shape[-1], device=values.device)[-1:].expand(values.shape[0], 1)
    out = []
    for q in qs:
        position = last.to(values.dtype) * q
        below = position.floor().long()
        above = torch.minimum(below + 1, last)
        fraction = position - below.to(values.dtype)
        low, high = ordered.gather(-1, below), ordered.gather(-1, above)
        out.append((low + (high - low) * fraction)[:, 0])
    return out


def host_eager(*tensors: Tensor) -> bool:
    """Whether ``tensors`` may go through NumPy: all on the CPU, none needing gradients, and not
    being traced, exported or compiled (where a host round trip would break the graph)."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
        return False
    return all(t.device.type == "cpu" and not t.requires_grad for t in tensors)


def _selected_quantiles(values: Tensor, qs: tuple[float, ...]) -> list[Tensor]:
    """:func:`quantiles` from the order statistics the ``qs`` fall between: ``np.partition`` at
    a single one, else one ``np.sort`` (NumPy's vectorised sort of a thumbnail's 14,400 values
    takes half the time of a partition at two positions, a tenth of one at ten)."""
    last = values.shape[-1] - 1
    # the position computed in the tensor's dtype, as the sorting path does
    positions = [float(torch.tensor(last, dtype=values.dtype) * q) for q in qs]
    bounds = [(int(p // 1), min(int(p // 1) + 1, last)) for p in positions]
    array = values.detach().numpy()
    needed = sorted({i for pair in bounds for i in pair})
    ordered = np.partition(array, needed, axis=-1) if len(needed) == 1 else np.sort(array, axis=-1)
    out = []
    for position, (below, above) in zip(positions, bounds, strict=True):
        low, high = ordered[:, below], ordered[:, above]
        fraction = np.asarray(position - below, dtype=array.dtype)
        out.append(torch.from_numpy(low + (high - low) * fraction))
    return out


def white_point(small: Tensor) -> Tensor:
    """Shape N: the :data:`WHITE_QUANTILE` of each low-resolution N×3×h×w frame's luma, within
    [:data:`MIN_WHITE`, 1] (float32)."""
    (white,) = quantiles(luma(small.float()).flatten(1), (WHITE_QUANTILE,))
    return white.clamp(MIN_WHITE, 1.0)


def headroom(small: Tensor) -> Tensor:
    """Shape N (float32): the :data:`WHITE_QUANTILE` of each low-resolution N×3×h×w frame's
    largest channel, within [:data:`MIN_WHITE`, 1]: the level a gain may raise to 1 before a
    channel clips (a blue sky's luma is far below it)."""
    (white,) = quantiles(small.float().amax(1).flatten(1), (WHITE_QUANTILE,))
    return white.clamp(MIN_WHITE, 1.0)


def normalise_exposure(small: Tensor, white: Tensor) -> Tensor:
    """``small`` divided by its ``white`` point (shape N), capped at 1; dtype of ``small``."""
    return (small.float() / white.view(-1, 1, 1, 1)).clamp(max=1.0).to(small.dtype)


def exponent_of_normalised(gamma: Tensor, small: Tensor, white: Tensor) -> Tensor:
    """The exponent for ``small`` itself that gives what ``gamma`` gives its normalised copy:
    ``small ** result == normalise_exposure(small, white) ** gamma`` (to the floor of 1e-4)."""
    x = small.float()
    normalised = torch.log((x / white.view(-1, 1, 1, 1)).clamp(_EPS, 1.0))
    own = torch.log(x.clamp(_EPS, 1.0)).clamp(max=-1e-6)
    return (gamma.float() * (normalised / own)).to(gamma.dtype)


def exposure_levels(
    gamma: Tensor, small: Tensor, stops: Tensor, *, room: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``(γ', gain)`` that expose a frame by ``stops`` (shape N) on top of ``gamma``: up to the
    frame's :func:`headroom` (of its low-resolution N×3×h×w ``small``) the stops are a gain
    applied before the exponent (``min(1, gain · x) ** γ``: every level scaled alike, so
    shadows keep their place against the highlights); beyond it they scale γ down (``γ' = γ ·
    2^−(s − s_white)``, a power that lifts what a gain cannot without clipping); below 0 they
    scale γ up towards 1 (``γ · 2^−s``, capped at 1: never darker than the frame). ``room``
    (shape N, in stops) in place of the frame's own headroom ``−log₂ headroom(small)`` (e.g.
    smoothed over time). ``gain`` has shape
    N (float32), ``γ'`` the dtype of ``gamma``."""
    stops = stops.float()
    room = -torch.log2(headroom(small)) if room is None else room.float()
    gain_stops = stops.clamp(min=0.0).minimum(room)
    scale = torch.exp2(gain_stops - stops).view(-1, 1, 1, 1)
    return (gamma.float() * scale).clamp(max=1.0).to(gamma.dtype), torch.exp2(gain_stops)

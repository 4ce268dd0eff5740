"""Enhancement methods the evaluator compares, named by a spec string on the command line.

=================================  ==========================================================
``sagc[:WEIGHTS][:key=value...]``  our enhancer; WEIGHTS a checkpoint path or installed name
                                   (default ``default``); one key per run-time setting
                                   (``scale``, ``denoise``, ``gate=on|off``, ``ev``,
                                   ``temporal_denoise``...: ``RuntimeSettings``)
``identity``                       the input unchanged
``gamma:G``                        ``x ** G`` (e.g. ``gamma:0.5``)
``clahe[:clip=C][:tile=T]``        OpenCV CLAHE on L of CIE Lab (clip 2.0, 8×8 tiles)
``histeq``                         histogram equalisation of Y (YCrCb)
``python:pkg.module:factory[:k=v]``  ``factory(**kv)`` returns a callable on N×3×H×W float in
                                   [0, 1] (any device) giving the same shape back
=================================  ==========================================================

Every method is a callable on N×3×H×W float tensors in [0, 1] with ``reset()`` (forget temporal
state between clips) and a ``name`` (its spec).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from sagc.core.errors import SagcError
from sagc.models.checkpoint import named_weights
from sagc.models.settings import settings_fields, switch

__all__ = ["Method", "parse_method", "parse_options", "METHOD_HELP"]

METHOD_HELP = (
    "sagc[:WEIGHTS][:KEY=VALUE...] (one key per run-time setting), identity, gamma:G, "
    "clahe[:clip=C:tile=T], histeq, "
    "python:package.module:factory[:key=value]"
)


class Method:
    """A named enhancement callable; subclasses implement ``enhance``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def enhance(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget temporal state (a new clip or an unrelated image follows)."""

    def __call__(self, x: Tensor) -> Tensor:
        y = self.enhance(x)
        if not isinstance(y, Tensor) or y.shape != x.shape:
            got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
            raise ValueError(f"method {self.name} returned {got}, expected a tensor of shape {tuple(x.shape)}")
        if not bool(torch.isfinite(y).all()):
            raise ValueError(f"method {self.name} returned non-finite values (NaN or inf)")
        return y.clamp(0, 1)


def parse_options(parts: list[str], spec: str) -> dict[str, str]:
    """``key=value`` pieces → dict; anything else is a clear error naming the spec."""
    options = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise SagcError(f"method {spec!r}: expected key=value, got {part!r}")
        options[key] = value
    return options


def _number(options: dict[str, str], key: str, spec: str, default: float | None = None) -> float | None:
    if key not in options:
        return default
    try:
        value = float(options.pop(key))
    except ValueError:
        raise SagcError(f"method {spec!r}: {key} must be a number") from None
    if not math.isfinite(value):
        raise SagcError(f"method {spec!r}: {key} must be a finite number, got {value:g}")
    return value


def _no_more(options: dict[str, str], spec: str, known: str) -> None:
    if options:
        raise SagcError(f"method {spec!r}: unknown option(s) {', '.join(sorted(options))} (known: {known})")


class Identity(Method):
    def enhance(self, x: Tensor) -> Tensor:
        return x


class Gamma(Method):
    def __init__(self, name: str, exponent: float) -> None:
        super().__init__(name)
        if exponent <= 0:
            raise SagcError(f"method {name!r}: the exponent must be positive")
        self.exponent = exponent

    def enhance(self, x: Tensor) -> Tensor:
        return x.clamp(min=0).pow(self.exponent)


class _PerImage8bit(Method):
    """Classical methods that work on one 8-bit RGB image at a time (OpenCV)."""

    def enhance(self, x: Tensor) -> Tensor:
        code = torch.round(x.clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        out = np.stack([self.enhance_rgb(np.ascontiguousarray(img)) for img in code])
        return torch.from_numpy(out).to(x.device).permute(0, 3, 1, 2).to(x.dtype) / 255.0

    def enhance_rgb(self, rgb: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Clahe(_PerImage8bit):
    def __init__(self, name: str, clip: float, tile: int) -> None:
        super().__init__(name)
        if clip <= 0 or tile < 1:
            raise SagcError(f"method {name!r}: clip must be > 0 and tile >= 1")
        self.clahe = cv2.createCLAHE(clipLimit=clip, tileGridSize=(tile, tile))

    def enhance_rgb(self, rgb: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
        lab[..., 0] = self.clahe.apply(np.ascontiguousarray(lab[..., 0]))
        return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


class HistEq(_PerImage8bit):
    def enhance_rgb(self, rgb: np.ndarray) -> np.ndarray:
        ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
        ycc[..., 0] = cv2.equalizeHist(np.ascontiguousarray(ycc[..., 0]))
        return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


class Sagc(Method):
    """Our enhancer in floating point (the reference path), with the video pipeline's temporal
    state (γ smoothing, exposure tracking, temporal noise reduction) as its settings ask."""

    def __init__(self, name: str, weights: str, **settings: float | bool | None) -> None:
        """``settings``: run-time setting overrides (None: the checkpoint's)."""
        from sagc.models import load_enhancer
        from sagc.stream.enhance.video_state import VideoState

        super().__init__(name)
        self.enhancer = load_enhancer(weights, **settings).eval()
        self.video_state = VideoState()
        self.video_state.follow(self.enhancer.settings)
        self._device: torch.device | None = None

    def reset(self) -> None:
        """Forget the temporal state (the evaluator calls this before each image and each clip)."""
        self.video_state.reset()

    @torch.inference_mode()
    def enhance(self, x: Tensor) -> Tensor:
        if self._device != x.device:
            self.enhancer.to(x.device)
            self._device = x.device
        return self.enhancer(x.float(), **self.video_state.hooks())


class External(Method):
    def __init__(self, name: str, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__(name)
        self.fn = fn

    def reset(self) -> None:
        reset = getattr(self.fn, "reset", None)
        if callable(reset):
            reset()

    def enhance(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.fn(x)


def _external(spec: str, rest: list[str]) -> Method:
    if len(rest) < 2 or not rest[0] or not rest[1]:
        raise SagcError(f"method {spec!r}: expected python:package.module:factory[:key=value...]")
    module_name, factory_name = rest[0], rest[1]
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is reported the same way
        raise SagcError(f"method {spec!r}: cannot import {module_name} ({exc.__class__.__name__}: {exc})") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise SagcError(f"method {spec!r}: {module_name} has no callable {factory_name}")
    options = parse_options(rest[2:], spec)
    try:
        fn = factory(**options)
    except Exception as exc:  # noqa: BLE001
        raise SagcError(f"method {spec!r}: {factory_name}(...) failed ({exc.__class__.__name__}: {exc})") from None
    if not callable(fn):
        raise SagcError(f"method {spec!r}: {factory_name}(...) returned {type(fn).__name__}, not a callable")
    return External(spec, fn)


def parse_method(spec: str) -> Method:
    """Build the method a spec names (see the module docstring); clear ``SagcError`` otherwise."""
    kind, _, rest_text = spec.partition(":")
    rest = rest_text.split(":") if rest_text else []
    if kind == "identity" and not rest:
        return Identity(spec)
    if kind == "gamma":
        if len(rest) != 1:
            raise SagcError(f"method {spec!r}: expected gamma:EXPONENT, e.g. gamma:0.5")
        return Gamma(spec, _number({"g": rest[0]}, "g", spec))
    if kind == "clahe":
        options = parse_options(rest, spec)
        clip = _number(options, "clip", spec, 2.0)
        tile = _number(options, "tile", spec, 8.0)
        _no_more(options, spec, "clip, tile")
        return Clahe(spec, clip, int(tile))
    if kind == "histeq" and not rest:
        return HistEq(spec)
    if kind == "sagc":
        weights = "default"
        if rest and "=" not in rest[0]:
            weights, rest = rest[0], rest[1:]
            if not Path(weights).exists():
                if "/" in weights or weights.endswith(".pt"):
                    raise SagcError(f"method {spec!r}: weights file {weights} not found")
                if weights not in named_weights():
                    raise SagcError(
                        f"method {spec!r}: {weights!r} is neither a weights file nor an installed name; "
                        "options are key=value, e.g. sagc:scale=4"
                    )
        options = parse_options(rest, spec)
        settings: dict[str, float | bool | None] = {}
        for setting in settings_fields():  # one key per run-time setting: scale=, gate=on|off, ...
            if setting.kind is bool:
                try:
                    settings[setting.name] = switch(options.pop(setting.name, None))
                except ValueError as exc:
                    raise SagcError(f"method {spec!r}: {setting.name} {exc}") from exc
            else:
                settings[setting.name] = _number(options, setting.name, spec)
        _no_more(options, spec, ", ".join(s.name for s in settings_fields()))
        try:
            return Sagc(spec, weights, **settings)
        except SagcError as exc:
            raise SagcError(f"method {spec!r}: {exc}") from exc
    if kind == "python":
        return _external(spec, rest)
    raise SagcError(f"unknown method {spec!r}; known: {METHOD_HELP}")

"""Process-level helpers the commands share: device choice, enhancer options and Ctrl-C handling."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch

from sagc.errors import SagcError

if TYPE_CHECKING:
    from sagc.models import Enhancer
    from sagc.stream.sources import Decoding

# --decode: "cpu" (the default) decodes in software; "nvdec" on the GPU's decoder, an error where
# there is none; "auto" on NVDEC when the model runs on CUDA and PyAV's FFmpeg offers it, falling
# back to the CPU where the device or the codec refuses (sagc.stream.sources.Decoding). The CPU is
# the default because NVDEC measured slower here (README, "Speed (GPU)")
DECODERS = ("auto", "cpu", "nvdec")

__all__ = [
    "DECODERS",
    "SWITCH",
    "add_decode_option",
    "add_enhancer_options",
    "decoding_from_args",
    "describe_settings",
    "enhancer_from_args",
    "parse_device",
    "Stopper",
    "stop_on_signals",
    "switch",
]

SWITCH = ("on", "off")  # the values of on/off options (--exposure-gate, sagc:gate=...)


def switch(value: str | None) -> bool | None:
    """``"on"`` → True, ``"off"`` → False, None (not given) → None; anything else is a ValueError."""
    if value is None:
        return None
    if value not in SWITCH:
        raise ValueError(f"must be on or off, got {value!r}")
    return value == "on"


def describe_settings(settings: Mapping[str, float | bool]) -> dict[str, str]:
    """Run-time settings (:meth:`~sagc.models.Enhancer.settings`) as text: ``gate`` on/off,
    numbers without trailing zeros."""
    return {key: ("on" if value else "off") if key == "gate" else f"{value:g}" for key, value in settings.items()}


def add_enhancer_options(parser: argparse.ArgumentParser) -> None:
    """``--weights``, ``--scale``, ``--gain``, ``--denoise``, ``--exposure-gate`` and ``--guide``:
    which enhancer, with what run-time settings."""
    parser.add_argument("--weights", default="default", help="checkpoint path or installed name")
    parser.add_argument("--scale", type=float, help="estimate γ at 1/SCALE resolution (checkpoint default)")
    parser.add_argument("--gain", type=float, help="run-time input gain before estimation (checkpoint default)")
    parser.add_argument(
        "--denoise",
        type=float,
        metavar="K",
        help="noise reduction before brightening: 5×5 bilateral filter with colour σ = K × the noise "
        "measured in each frame; 0 turns it off (checkpoint default: 4 for the default weights)",
    )
    parser.add_argument(
        "--exposure-gate",
        choices=SWITCH,
        help="leave frames that are already well exposed (bright on average, with highlights) alone; "
        "in between, enhance them less (checkpoint default: on for the default weights)",
    )
    parser.add_argument(
        "--guide",
        type=float,
        metavar="F",
        help="upsample γ along each pixel's brightness (a local tone curve fitted in windows of "
        "radius F × the low-resolution frame's shorter side) instead of bilinearly; 0 turns it off "
        "(checkpoint default: 0.5 for the default weights)",
    )


def enhancer_from_args(args: argparse.Namespace) -> Enhancer:
    """The :class:`~sagc.models.Enhancer` that :func:`add_enhancer_options`' arguments ask for."""
    from sagc.models import load_enhancer  # lazily: `sagc --help` stays fast

    gate = switch(args.exposure_gate)
    return load_enhancer(
        args.weights, scale=args.scale, gain=args.gain, denoise=args.denoise, gate=gate, guide=args.guide
    )


def add_decode_option(parser: argparse.ArgumentParser) -> None:
    """``--decode``: decode video on the CPU or on NVDEC."""
    parser.add_argument(
        "--decode",
        default="cpu",
        choices=DECODERS,
        help="video decoder: cpu (default), nvdec (the GPU's decoder; an error where there is none), "
        "or auto (NVDEC when --device is CUDA and it is available, else the CPU)",
    )


def decoding_from_args(args: argparse.Namespace, device: torch.device) -> Decoding:
    """The :class:`~sagc.stream.sources.Decoding` for ``--decode`` and the model's device."""
    from sagc.stream.sources import Decoding

    return Decoding.choose(args.decode, device.type, device.index)


def parse_device(name: str) -> torch.device:
    """A usable torch device from a user's ``--device`` value, or one clear error."""
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise SagcError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SagcError("--device cuda: no CUDA device is available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise SagcError(f"unsupported device {name!r}; use cpu, cuda or cuda:N")
    return device


class Stopper:
    """Turns the first SIGINT/SIGTERM into a stop request; a second one aborts at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None

    def __call__(self, signum: int, _frame: object) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.signum = signum
        self.event.set()


@contextmanager
def stop_on_signals() -> Iterator[Stopper]:
    """Install :class:`Stopper` for SIGINT and SIGTERM for the duration of the block."""
    stopper = Stopper()
    previous = {s: signal.signal(s, stopper) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopper
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

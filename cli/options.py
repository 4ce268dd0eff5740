"""Process-level helpers the commands share: device choice, enhancer options and Ctrl-C handling."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch

from sagc.core.devices import usable_device
from sagc.core.errors import SagcError
from sagc.models.settings import SWITCH, settings_fields, switch
from sagc.stream.media.sources import DECODERS

if TYPE_CHECKING:
    from sagc.models import Enhancer
    from sagc.stream.media.sinks import EncoderSettings
    from sagc.stream.media.sources import Decoding

__all__ = [
    "add_decode_option",
    "add_enhancer_options",
    "decoding_from_args",
    "enhancer_from_args",
    "add_device_option",
    "add_encoder_options",
    "encoder_settings_from_args",
    "add_overwrite_option",
    "add_threads_option",
    "parse_device",
    "set_threads",
    "setting_overrides",
    "Stopper",
    "stop_on_signals",
]


def add_enhancer_options(parser: argparse.ArgumentParser) -> None:
    """``--weights`` and one option per run-time setting (each field of
    :class:`~sagc.models.RuntimeSettings`, its ``flag``); each defaults to the checkpoint's value."""
    parser.add_argument("--weights", default="default", help="checkpoint path or installed name")
    for setting in settings_fields():
        text = f"{setting.help} (default: the checkpoint's)"
        if setting.kind is bool:
            parser.add_argument(setting.flag, dest=setting.name, choices=SWITCH, help=text)
        else:
            parser.add_argument(setting.flag, dest=setting.name, type=float, metavar=setting.name.upper(), help=text)


def setting_overrides(args: argparse.Namespace) -> dict[str, float | bool | None]:
    """The run-time settings given on the command line (None: the checkpoint's)."""
    given: dict[str, float | bool | None] = {}
    for setting in settings_fields():
        value = getattr(args, setting.name)
        value = switch(value) if setting.kind is bool else value
        if value is not None:
            try:
                setting.check(value)
            except ValueError as exc:  # name the flag the user typed
                raise SagcError(f"{setting.flag}: {exc}") from None
        given[setting.name] = value
    return given


def enhancer_from_args(args: argparse.Namespace, **defaults: float | bool) -> Enhancer:
    """The :class:`~sagc.models.Enhancer` that :func:`add_enhancer_options`' arguments ask for;
    ``defaults`` stand in for settings that neither the command line nor the checkpoint turns on
    (the preview smooths at 0.8 unless told otherwise)."""
    from sagc.models import load_enhancer  # lazily: `sagc --help` stays fast

    given = setting_overrides(args)
    enhancer = load_enhancer(args.weights, **given)
    fill = {k: v for k, v in defaults.items() if given.get(k) is None and not getattr(enhancer.settings, k)}
    if fill:
        enhancer.settings = enhancer.settings.replace(**fill)
    return enhancer


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
    """The :class:`~sagc.stream.media.sources.Decoding` for ``--decode`` and the model's device."""
    from sagc.stream.media.sources import Decoding

    return Decoding.choose(args.decode, device.type, device.index)


def parse_device(name: str) -> torch.device:
    """A usable torch device from a user's ``--device`` value, or one clear error."""
    return usable_device(name)


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


def set_threads(count: int) -> None:
    """``--threads``: threads for the model on the CPU (torch's, and the stage's ONNX Runtime
    estimator takes the same count)."""
    most = max_threads()
    if not 1 <= count <= most:
        raise SagcError(f"--threads must be between 1 and {most} (4 per CPU core here), got {count}")
    torch.set_num_threads(count)


def max_threads() -> int:
    """The most ``--threads`` may ask for: 4 per CPU core of this machine (more only waits)."""
    return 4 * (os.cpu_count() or 1)


def add_device_option(parser: argparse.ArgumentParser, *, what: str = "the model") -> None:
    """``--device``: where ``what`` runs."""
    parser.add_argument("--device", default="cpu", help=f"torch device for {what}: cpu (default), cuda, cuda:N")


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads``: threads for the model on the CPU (see :func:`set_threads`)."""
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads for the model on CPU (default 1: decoding and encoding run beside it)",
    )


def add_overwrite_option(parser: argparse.ArgumentParser, *, what: str = "existing outputs") -> None:
    """``--overwrite``: let outputs replace files (never an input: sagc.core.outputs)."""
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what} (an input is never replaced)")


def add_encoder_options(parser: argparse.ArgumentParser, *, pix_fmt: bool = True) -> None:
    """``--codec``, ``--crf``, ``--preset`` (and ``--pix-fmt``): the video encoder's settings."""
    from sagc.stream.media.sinks import PRESETS

    parser.add_argument("--codec", help="video encoder (default by extension: libx264, webm: libvpx-vp9)")
    parser.add_argument("--crf", type=int, help="constant rate factor (default 18 for x264, 31 for VP9)")
    parser.add_argument("--preset", default="veryfast", choices=PRESETS, help="encoder speed preset (default veryfast)")
    if pix_fmt:
        parser.add_argument("--pix-fmt", help="encoder pixel format (default: the input's, else yuv420p)")


def encoder_settings_from_args(args: argparse.Namespace) -> EncoderSettings:
    """The :class:`~sagc.stream.media.sinks.EncoderSettings` that :func:`add_encoder_options` asked for."""
    from sagc.stream.media.sinks import EncoderSettings

    return EncoderSettings(codec=args.codec, crf=args.crf, preset=args.preset, pix_fmt=getattr(args, "pix_fmt", None))

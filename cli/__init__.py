"""The ``sagc`` command line: the only module that prints.

Every user mistake surfaces as one ``sagc: error: ...`` line on stderr and a non-zero exit;
``--debug`` adds the traceback. This module imports only the standard library at load time:
the libraries (OpenCV, PyAV, torch) load inside :func:`main`, where a Ctrl-C while they load
ends the command quietly with status 130.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence

from sagc.core import __version__
from sagc.core.errors import SagcError

log = logging.getLogger("sagc")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands."""
    from .bench import add_bench
    from .enhance import add_enhance
    from .evaluate import add_data, add_eval
    from .export import add_export
    from .preview import add_preview
    from .train import add_train
    from .weights import add_weights

    parser = argparse.ArgumentParser(
        prog="sagc", description="Real-time low-light enhancement (Semantic-Aware Gamma Correction)."
    )
    parser.add_argument("--version", action="version", version=f"sagc {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_enhance(sub)
    add_bench(sub)
    add_train(sub)
    add_weights(sub)
    add_export(sub)
    add_preview(sub)
    add_eval(sub)
    add_data(sub)
    return parser


class _Interrupted(int):
    """Exit status 130 for a Ctrl-C that no command handled (e.g. while the libraries load)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``sagc`` command line; returns the exit status."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while the libraries load, or a second Ctrl-C: quietly
        print("sagc: interrupted", file=sys.stderr)
        return _Interrupted(130)


def run() -> None:
    """Entry point of the ``sagc`` console script and ``python -m sagc``."""
    code = main()
    if isinstance(code, _Interrupted):
        # CPython marks a Ctrl-C that lands inside an extension's start-up code as unhandled and
        # re-raises SIGINT at exit, even once caught; leave with the status we chose instead
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(code))
    sys.exit(code)


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[None]:
    """Hold a Ctrl-C that arrives while the libraries load until they have: raised inside an
    extension's start-up code (pybind11), it aborts the process instead of reaching Python."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


def _main(argv: Sequence[str] | None) -> int:
    with _deferred_interrupt():
        import cv2  # noqa: F401, I001  - before PyAV (see sagc.stream)
        import av.error  # noqa: I001

        from sagc.core.extras import missing_extra

        parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="sagc: %(levelname)s: %(message)s",
    )
    try:
        return args.handler(args)
    except BrokenPipeError:  # the reader went away (`sagc weights | head`): stop quietly, like cat
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except ModuleNotFoundError as exc:  # an optional extra that is not installed
        if args.debug or exc.name is None:
            raise
        print(f"sagc: error: {missing_extra(exc.name, f'sagc {args.command}')}", file=sys.stderr)
        return 1
    except SagcError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"sagc: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (av.error.FFmpegError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"sagc: error: {exc} (rerun with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    run()

"""The one error type that the CLI turns into a one-line message and an exit code."""

from __future__ import annotations

__all__ = ["SagcError", "first_line"]


class SagcError(Exception):
    """A user-facing failure: the message says what is wrong and what to do."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``, for one-line reports of an exception."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__

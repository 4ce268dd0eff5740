"""The one error type that the CLI turns into a one-line message and an exit code."""

from __future__ import annotations

__all__ = ["SagcError"]


class SagcError(Exception):
    """A user-facing failure: the message says what is wrong and what to do."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

"""The rules every file a job writes is checked against before anything runs.

An output may never be an input (by file identity: the same file under another name, a hard
link or a symlink counts), never a file that exists unless ``overwrite``, never a directory, and
never the output of another part of the same run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from sagc.core.errors import SagcError

__all__ = ["check_outputs"]


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:  # does not exist (yet)
        return None
    return stat.st_dev, stat.st_ino


def check_outputs(
    outputs: Sequence[str | os.PathLike[str]],
    inputs: Iterable[str | os.PathLike[str]],
    *,
    overwrite: bool,
) -> None:
    """Raise one clear :class:`SagcError` if any of ``outputs`` would clobber an input, an
    existing file (without ``overwrite``) or another output of the same run (in time linear in
    the number of files: archives hold thousands)."""
    by_path: dict[Path, Path] = {}
    by_identity: dict[tuple[int, int], Path] = {}
    for source in map(Path, inputs):
        by_path.setdefault(source.resolve(), source)
        identity = _identity(source)
        if identity is not None:
            by_identity.setdefault(identity, source)
    seen: dict[Path, Path] = {}
    for output in map(Path, outputs):
        key = output.resolve()
        identity = _identity(output)
        source = by_path.get(key) or (by_identity.get(identity) if identity is not None else None)
        if source is not None:
            raise SagcError(f"{output} would overwrite the input {source}; choose another output name")
        if key in seen:
            raise SagcError(f"{output} would be written twice in this run; use distinct outputs or separate runs")
        seen[key] = output
        if output.is_dir():
            raise SagcError(f"output {output} is a directory; give a file name")
        if output.exists() and not overwrite:
            raise SagcError(f"output exists: {output}; pass --overwrite to replace it")

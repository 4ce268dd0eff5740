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

__all__ = ["check_outputs", "same_file"]


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name one file: the same resolved path, or the same inode."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def check_outputs(
    outputs: Sequence[str | os.PathLike[str]],
    inputs: Iterable[str | os.PathLike[str]],
    *,
    overwrite: bool,
) -> None:
    """Raise one clear :class:`SagcError` if any of ``outputs`` would clobber an input, an
    existing file (without ``overwrite``) or another output of the same run."""
    sources = [Path(p) for p in inputs]
    seen: dict[Path, Path] = {}
    for output in map(Path, outputs):
        for source in sources:
            if same_file(output, source):
                raise SagcError(f"{output} would overwrite the input {source}; choose another output name")
        key = output.resolve()
        if key in seen:
            raise SagcError(f"{output} would be written twice in this run; use distinct outputs or separate runs")
        seen[key] = output
        if output.is_dir():
            raise SagcError(f"output {output} is a directory; give a file name")
        if output.exists() and not overwrite:
            raise SagcError(f"output exists: {output}; pass --overwrite to replace it")

"""Write files atomically: into a unique temporary name beside the target, then publish it.

A reader (or a crash) never sees a half-written file; the temporary name keeps the target's
extension so writers that pick a format from it (muxers, image encoders, plotting) still work.
Temporary names are created exclusively, so two runs never share one, and publishing without
``overwrite`` never replaces a file that appeared at the target in the meantime.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

from sagc.core.errors import SagcError

__all__ = [
    "OutputAppeared",
    "atomic_write",
    "atomic_write_bytes",
    "partial_paths",
    "publish",
    "set_run_tag",
    "tagged_partials",
    "temporary_path",
]

# link() is refused by some file systems (FAT, some network mounts): fall back to check-then-rename
_NO_LINK = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_RUN_TAG = [""]  # set once per process by a worker of a run (set_run_tag)
_ANY_TAG = "[0-9a-f]{8}"  # a run's tag as the Ray driver makes it (8 hex digits)
_TAGGED = re.compile(rf"(?P<stem>.+)\.{_ANY_TAG}[0-9a-f]{{6}}\.partial(?P<suffix>(\.[^.]+)?)")


def set_run_tag(tag: str) -> None:
    """Mark this process's temporary files as the run ``tag``'s (hex digits): whoever started the
    run can then find exactly the files its workers left (:func:`partial_paths` with ``tag``)."""
    if not re.fullmatch(r"[0-9a-f]*", tag):
        raise ValueError(f"a run tag is hex digits, got {tag!r}")
    _RUN_TAG[0] = tag


def temporary_path(target: str | os.PathLike[str]) -> Path:
    """Create an empty file ``<stem>.<tag><token>.partial<ext>`` beside ``target``, exclusively,
    and return its path: unique to this call, so concurrent runs and existing files are never
    shared."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o666 & ~_umask()
    for _ in range(100):
        tmp = target.with_name(f"{target.stem}.{_RUN_TAG[0]}{secrets.token_hex(3)}.partial{target.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
        except FileExistsError:
            continue
        return tmp
    raise SagcError(f"cannot create a temporary file beside {target}; clear out its *.partial files")


def partial_paths(target: str | os.PathLike[str], *, tag: str | None = None) -> list[Path]:
    """The temporary files :func:`temporary_path` made for ``target`` that are still there (a
    writer that was killed leaves its own behind): those of the run ``tag``, or with ``tag``
    None those of any tagged run."""
    target = Path(target)
    marker = re.escape(tag) if tag is not None else _ANY_TAG
    pattern = re.compile(rf"{re.escape(target.stem)}\.{marker}[0-9a-f]{{6}}\.partial{re.escape(target.suffix)}")
    try:
        return sorted(p for p in target.parent.iterdir() if pattern.fullmatch(p.name))
    except FileNotFoundError:
        return []


class OutputAppeared(SagcError):
    """The target was created by someone else while ours was written; ours waits at its
    temporary name (named in the message), which is kept."""


def publish(tmp: str | os.PathLike[str], target: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Move the finished ``tmp`` to ``target``. Without ``overwrite`` a file that exists at
    ``target`` by now is kept, and the error (:class:`OutputAppeared`) names where the finished
    output waits."""
    tmp, target = Path(tmp), Path(target)
    appeared = OutputAppeared(
        f"{target} appeared while it was being written and was kept; the finished output is {tmp} "
        "(pass --overwrite to replace existing files)"
    )
    if overwrite:
        os.replace(tmp, target)
        return target
    try:
        os.link(tmp, target)  # fails if target exists: the check and the move are one step
    except FileExistsError:
        raise appeared from None
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        if target.exists():
            raise appeared from None
        os.replace(tmp, target)
        return target
    tmp.unlink()
    return target


def tagged_partials(targets: Iterable[str | os.PathLike[str]]) -> dict[Path, list[Path]]:
    """:func:`partial_paths` of any tagged run for many targets, each folder listed once (an
    archive's thousands of outputs share a few folders): target → its temporary files."""
    wanted = {Path(t) for t in targets}
    found: dict[Path, list[Path]] = {}
    for folder in {t.parent for t in wanted}:
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            continue
        for name in names:
            match = _TAGGED.fullmatch(name)
            target = folder / f"{match['stem']}{match['suffix']}" if match else None
            if target in wanted:
                found.setdefault(target, []).append(folder / name)
    return found


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None], *, overwrite: bool = True) -> Path:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then publish it there
    (replacing an existing file only with ``overwrite``)."""
    target = Path(path)
    tmp = temporary_path(target)
    try:
        write(tmp)
        publish(tmp, target, overwrite=overwrite)
    except OutputAppeared:
        raise  # the finished output stays at the temporary name the message gives
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), overwrite=overwrite)

"""The manifest of an archive run: one JSON line per finished file, written as files finish.

``OUTPUT/manifest.jsonl`` holds, per line, ``input``, ``output``, ``frames``, ``lost`` (frames
a truncated or corrupt input did not give), ``seconds``, ``worker`` (host:pid), ``attempts``
and ``error`` (None when the file was enhanced). Lines are appended and flushed to disk one by
one, so a run that is stopped at any point leaves a manifest of what it finished; a resumed run
appends to it, and the newest line of an input counts.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from sagc.core.errors import SagcError

__all__ = ["MANIFEST_NAME", "Manifest", "ManifestEntry", "read_manifest"]

MANIFEST_NAME = "manifest.jsonl"


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """What became of one input."""

    input: str
    output: str
    frames: int = 0
    lost: int = 0
    seconds: float = 0.0
    worker: str = ""
    attempts: int = 1
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def read_manifest(path: str | os.PathLike[str]) -> dict[str, ManifestEntry]:
    """The newest entry per input of the manifest at ``path`` (empty when there is none); a
    line cut short by a crash mid-write is skipped."""
    entries: dict[str, ManifestEntry] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return entries
    except (OSError, UnicodeDecodeError) as exc:
        raise SagcError(f"cannot read the manifest {path}: {exc}") from None
    for line in lines:
        try:
            entry = ManifestEntry(**json.loads(line))
        except (ValueError, TypeError):
            continue
        entries[entry.input] = entry
    return entries


class Manifest:
    """Appends entries to a manifest file (a context manager)."""

    def __init__(self, path: str | os.PathLike[str], *, fresh: bool) -> None:
        """Open ``path`` to append to, or, with ``fresh``, to start over."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_symlink():  # a link would carry the writes to whatever it points at
            raise SagcError(f"{self.path} is a symbolic link; remove it (the manifest is written in -o itself)")
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if fresh else os.O_APPEND)
        try:
            self._file = os.fdopen(os.open(self.path, flags, 0o666), "w", encoding="utf-8")
            self._file.seek(0, os.SEEK_END)  # (appending: where the writes land)
            if self._file.tell() and not self.path.read_bytes().endswith(b"\n"):
                self._file.write("\n")  # end a line a crash cut short, so the next one stands alone
        except OSError as exc:
            raise SagcError(f"cannot write the manifest {self.path}: {exc.strerror or exc}") from None

    def write(self, entry: ManifestEntry) -> None:
        """Append ``entry`` and flush it to disk."""
        self._file.write(json.dumps(asdict(entry)) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

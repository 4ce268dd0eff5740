"""Plan an archive for ``sagc enhance --ray``: every video and image below folders and in list
files, mirrored under one output folder.

- a folder: every video and image below it, at any depth, written under ``OUTPUT/`` with the
  same relative path (several inputs: under ``OUTPUT/<folder name>/``);
- a list file (``.txt``, ``.lst``): one path per line (blank lines and ``#`` comments skipped;
  relative paths are relative to the list's folder), written under ``OUTPUT/`` with their path
  relative to the deepest folder they share;
- a video or image: ``OUTPUT/<name>``.

Videos keep their container where we can write it, else become ``.mp4`` (as ``sagc enhance``);
the same output rules hold (:func:`sagc.core.outputs.check_outputs`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sagc.core.errors import SagcError
from sagc.core.outputs import check_outputs
from sagc.stream.media.sources import is_lavfi, is_url
from sagc.stream.run.jobs import Job, folder_job, folder_jobs, input_kind, written_paths

__all__ = ["LIST_EXTENSIONS", "plan_archive"]

LIST_EXTENSIONS = (".txt", ".lst")


def _listed(list_file: Path) -> list[Path]:
    try:
        lines = list_file.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SagcError(f"cannot read the list {list_file}: {exc}") from None
    paths = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        path = Path(text) if Path(text).is_absolute() else list_file.parent / text
        if not path.is_file():
            raise SagcError(f"{list_file}:{number}: no such file {text}; fix or remove the line")
        if input_kind(path) is None:
            raise SagcError(f"{list_file}:{number}: {text} is not a video or an image we read; remove the line")
        paths.append(path)
    if not paths:
        raise SagcError(f"the list {list_file} names no files; give one path per line")
    return paths


def _jobs_for(spec: str, output: Path, *, many: bool) -> list[Job]:
    if is_url(spec) or is_lavfi(spec):
        raise SagcError(f"--ray enhances files; run the stream {spec} without --ray")
    path = Path(spec).absolute()  # workers run elsewhere: every path they get is absolute
    if not path.exists():
        raise SagcError(f"input not found: {spec}")
    if path.is_dir():
        return folder_jobs(path, output / path.resolve().name if many else output, skip=output, spec=spec)
    if path.suffix.lower() in LIST_EXTENSIONS:
        listed = _listed(path)
        common = Path(os.path.commonpath([p.resolve().parent for p in listed]))
        return [folder_job(p, output / p.resolve().relative_to(common)) for p in listed]
    if input_kind(path) is None:
        raise SagcError(f"{spec} is not a video, an image, a folder or a list file (.txt, one path per line)")
    return [folder_job(path, output / path.name)]


def plan_archive(
    inputs: Sequence[str],
    output: str | None,
    *,
    overwrite: bool,
    compare: bool = False,
    resume: bool = False,
) -> list[Job]:
    """The jobs for ``inputs`` under the folder ``output``, checked (one clear SagcError for the
    first problem). With ``resume``, jobs whose output exists are left out: outputs are only ever
    published whole, so an existing one is finished."""
    if not inputs:
        raise SagcError("no input given; pass folders, list files, videos or images")
    if not output:
        raise SagcError("--ray writes into a folder: give -o FOLDER (on storage every node of the cluster sees)")
    root = Path(output).absolute()
    if root.exists() and not root.is_dir():
        raise SagcError(f"-o must be a folder with --ray, got the file {output}")
    jobs = [job for spec in inputs for job in _jobs_for(spec, root, many=len(inputs) > 1)]
    if resume:
        jobs = [job for job in jobs if not job.output.exists()]
    writes = [path for job in jobs for path in written_paths(job, compare=compare)]
    check_outputs(writes, [j.source for j in jobs], overwrite=overwrite)
    return jobs

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
from collections.abc import Iterator, Sequence
from pathlib import Path

from sagc.core.errors import SagcError
from sagc.core.outputs import check_outputs
from sagc.stream.media.images import IMAGE_EXTENSIONS, is_image_path
from sagc.stream.media.sources import is_lavfi, is_url
from sagc.stream.run.jobs import Job, video_output_name, written_paths

__all__ = ["LIST_EXTENSIONS", "VIDEO_INPUT_EXTENSIONS", "plan_archive"]

VIDEO_INPUT_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".flv", ".wmv", ".mpg", ".mpeg", ".3gp",
)  # fmt: skip
LIST_EXTENSIONS = (".txt", ".lst")


def _kind(path: Path) -> str | None:
    if is_image_path(path):
        return "image"
    if path.suffix.lower() in VIDEO_INPUT_EXTENSIONS:
        return "video"
    return None


def _job(path: Path, target: Path) -> Job:
    if _kind(path) == "image":
        return Job("image", str(path), target)
    return Job("video", str(path), target.with_name(video_output_name(target.stem, target.suffix)))


def _below(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root, name)
            if _kind(path) is not None:
                yield path


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
        if _kind(path) is None:
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
        base = output / path.resolve().name if many else output
        jobs = [_job(p, base / p.relative_to(path)) for p in _below(path)]
        if not jobs:
            raise SagcError(f"no videos or images ({', '.join(IMAGE_EXTENSIONS)}, …) below {spec}")
        return jobs
    if path.suffix.lower() in LIST_EXTENSIONS:
        listed = _listed(path)
        common = Path(os.path.commonpath([p.resolve().parent for p in listed]))
        return [_job(p, output / p.resolve().relative_to(common)) for p in listed]
    if _kind(path) is None:
        raise SagcError(f"{spec} is not a video, an image, a folder or a list file (.txt, one path per line)")
    return [_job(path, output / path.name)]


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

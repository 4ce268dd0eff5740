"""Plan ``sagc enhance`` work: which inputs become which outputs, checked before anything runs.

Rules (:mod:`sagc.core.outputs`): never write over an input, an existing file (unless ``overwrite``)
or another output of the same run — side-by-side ``--compare`` files included; a default output
sits beside its input as ``<stem>_enhanced<ext>`` (folders: ``<folder>_enhanced/``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sagc.core.errors import SagcError
from sagc.core.outputs import check_outputs
from sagc.stream.media.images import IMAGE_EXTENSIONS, is_image_path
from sagc.stream.media.sinks import VIDEO_EXTENSIONS, container_for
from sagc.stream.media.sources import is_lavfi, is_url

__all__ = [
    "VIDEO_INPUT_EXTENSIONS",
    "Job",
    "compare_path",
    "folder_job",
    "folder_jobs",
    "input_kind",
    "media_below",
    "plan_jobs",
    "video_output_name",
    "written_paths",
]

SUFFIX = "_enhanced"
VIDEO_INPUT_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".flv", ".wmv", ".mpg", ".mpeg", ".3gp",
)  # fmt: skip
"""What a folder's videos are recognised by (a single file of another extension is still tried)."""


@dataclass(frozen=True, slots=True)
class Job:
    """One input and the file it becomes."""

    kind: Literal["video", "image"]
    source: str
    output: Path


def compare_path(output: Path) -> Path:
    """Where ``--compare`` puts the side-by-side for ``output``."""
    return output.with_name(f"{output.stem}_compare{output.suffix}")


def written_paths(job: Job, *, compare: bool) -> list[Path]:
    """The files ``job`` writes: its output, and with ``compare`` the side-by-side."""
    return [job.output, compare_path(job.output)] if compare else [job.output]


def video_output_name(stem: str, ext: str) -> str:
    """``stem`` with ``ext`` where we write that container, else ``.mp4``."""
    return f"{stem}{ext if ext.lower() in VIDEO_EXTENSIONS else '.mp4'}"


def input_kind(path: Path) -> str | None:
    """``"image"`` or ``"video"`` by the file's extension, None for anything else."""
    if is_image_path(path):
        return "image"
    if path.suffix.lower() in VIDEO_INPUT_EXTENSIONS:
        return "video"
    return None


def media_below(folder: Path, *, skip: Path | None = None) -> list[Path]:
    """Every video and image below ``folder`` at any depth, sorted; nothing under ``skip`` (an
    output folder inside the input folder: earlier outputs are never inputs)."""
    skipped = skip.resolve() if skip is not None else None
    found = []
    for root, dirs, files in os.walk(folder):
        if skipped is not None:
            dirs[:] = [d for d in dirs if Path(root, d).resolve() != skipped]
        dirs.sort()
        found += [Path(root, name) for name in sorted(files) if input_kind(Path(root, name)) is not None]
    return found


def folder_job(path: Path, target: Path) -> Job:
    """The job for ``path`` found in a folder, written to ``target`` (videos keep a container we
    write, else become ``.mp4``)."""
    if input_kind(path) == "image":
        return Job("image", str(path), target)
    return Job("video", str(path), target.with_name(video_output_name(target.stem, target.suffix)))


def folder_jobs(folder: Path, base: Path, *, skip: Path, spec: str) -> list[Job]:
    """A job for every video and image below ``folder``, written to the same relative path under
    ``base``; nothing under ``skip`` (the run's output folder) is an input; none found is an error
    naming ``spec``."""
    found = media_below(folder, skip=skip)
    if not found:
        raise SagcError(f"no videos or images ({', '.join(IMAGE_EXTENSIONS)}, .mp4, …) below {spec}")
    return [folder_job(p, base / p.relative_to(folder)) for p in found]


def _stream_stem(spec: str) -> str:
    return "lavfi" if is_lavfi(spec) else (Path(spec.split("?")[0]).stem or "stream")


def _jobs_for(spec: str, output: Path | None, *, into_dir: bool, many: bool) -> list[Job]:
    """Jobs for one input; ``output`` is a file (``into_dir`` False) or a folder.

    A single folder input is written straight into ``output``; with several inputs each
    folder gets its own subfolder there.
    """
    if is_url(spec) or is_lavfi(spec):
        if output is None:
            raise SagcError(f"give -o OUTPUT for the stream input {spec}")
        target = output / f"{_stream_stem(spec)}{SUFFIX}.mp4" if into_dir else output
        return [Job("video", spec, target)]
    path = Path(spec)
    if not path.exists():
        raise SagcError(f"input not found: {spec}")
    if path.is_dir():
        if output is None:
            folder = path.resolve().with_name(path.resolve().name + SUFFIX)
        else:
            folder = output / path.name if many else output
        if folder.exists() and not folder.is_dir():
            raise SagcError(f"output {folder} exists and is not a directory")
        return folder_jobs(path, folder, skip=output or folder, spec=spec)
    if is_image_path(path):
        name = f"{path.stem}{SUFFIX}{path.suffix}"
        if output is None:
            return [Job("image", spec, path.with_name(name))]
        return [Job("image", spec, output / path.name if into_dir else output)]
    if output is None:
        return [Job("video", spec, path.with_name(video_output_name(path.stem + SUFFIX, path.suffix)))]
    return [Job("video", spec, output / video_output_name(path.stem, path.suffix) if into_dir else output)]


def _check_writable(folder: Path) -> None:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise SagcError(f"cannot write into {folder}: {probe} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise SagcError(f"cannot write into {folder}: permission denied; choose another -o")


def plan_jobs(inputs: Sequence[str], output: str | None, *, overwrite: bool, compare: bool = False) -> list[Job]:
    """Check inputs and outputs (with ``compare``, the side-by-side files too) and return the
    jobs to run, or raise one clear SagcError."""
    if not inputs:
        raise SagcError("no input given; pass a video, an image or a folder (or --demo)")
    out = Path(output) if output else None
    many = len(inputs) > 1
    into_dir = out is not None and (many or out.is_dir() or str(output).endswith(("/", os.sep)))
    if many and out is not None and out.exists() and not out.is_dir():
        raise SagcError(f"-o must be a directory when several inputs are given, got file {output}")
    jobs = [job for spec in inputs for job in _jobs_for(spec, out, into_dir=into_dir, many=many)]
    sources = [j.source for j in jobs if not (is_url(j.source) or is_lavfi(j.source))]
    writes = [path for job in jobs for path in written_paths(job, compare=compare)]
    check_outputs(writes, sources, overwrite=overwrite)
    for job in jobs:
        if job.kind == "video":
            container_for(job.output)
        elif not is_image_path(job.output):
            known = ", ".join(IMAGE_EXTENSIONS)
            raise SagcError(f"image output {job.output} needs an image extension ({known})")
        _check_writable(job.output.parent)
    return jobs

"""Enhance an archive on a Ray cluster: the files spread over workers, each the single-machine
pipeline.

One :class:`EnhanceWorker` actor per CPU slot (or per GPU with ``--device cuda``) of the cluster
loads the weights once and enhances one file per call with
:func:`~sagc.stream.run.transcode.enhance_video` or :func:`~sagc.stream.run.transcode.enhance_images`,
exactly as ``sagc enhance`` does on one machine: a file's output is the one a local run with the
same settings writes (images: the same bytes; videos: the same enhanced frames, while the encoder's
bytes are not reproducible from run to run even on one machine — x264 with its threads differs
now and then, Matroska stamps every file with a random ID). The driver (:func:`run_archive`)
hands out files as workers come free and appends each finished file to the manifest
(:mod:`sagc.stream.run.manifest`). A worker that dies
mid-file (killed, out of memory, node lost) leaves no partial output: its temporary file is
removed, the worker is replaced, and the file goes to the next free worker, up to ``retries``
times. A file that fails on its own (corrupt, unreadable) is one failed manifest line. Setting
``stop`` (Ctrl-C) asks every worker to stop after its current frame; unfinished files keep their
playable ``.partial`` file, as on one machine.

Inputs and outputs must be on storage every node sees: each worker checks that it can read every
input and write into the output folder before any work starts.

Ray is an optional dependency (``pip install "sagc[ray]"``), imported only here.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

from sagc.core.atomic import partial_paths, set_run_tag, tagged_partials
from sagc.core.errors import SagcError, first_line
from sagc.models import Enhancer
from sagc.stream.apps import reaper
from sagc.stream.media.frame import DEFAULT_MAX_PIXELS
from sagc.stream.media.sinks import EncoderSettings
from sagc.stream.media.sources import Decoding
from sagc.stream.run.jobs import Job, written_paths
from sagc.stream.run.manifest import Manifest, ManifestEntry
from sagc.stream.run.transcode import TruncatedInput, enhance_images, enhance_video

__all__ = ["ArchiveSummary", "EnhanceWorker", "WorkerSetup", "connect", "import_ray", "run_archive"]

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"
_START_TIMEOUT = 300.0  # seconds for the workers to start and check the storage
_POLL = 0.5  # seconds between progress updates
_CONNECT_TIMEOUT = 10.0  # seconds for the cluster's address to answer


def import_ray() -> ModuleType:
    """The ``ray`` module, or one clear error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise SagcError('--ray needs Ray: pip install "sagc[ray]" (on every node of the cluster)') from None
    return ray


@dataclass(frozen=True)
class WorkerSetup:
    """Everything a worker needs to run files as ``sagc enhance`` would on one machine."""

    enhancer: Enhancer
    device: str = "cpu"
    encoder: EncoderSettings = EncoderSettings()
    decoding: Decoding = Decoding()
    compare: bool = False
    overwrite: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    threads: int = 1
    run_tag: str = ""  # marks the run's temporary files (core.atomic.set_run_tag)

    @property
    def gpu(self) -> bool:
        """Whether the workers run on CUDA (one per GPU instead of one per CPU slot)."""
        return self.device.startswith("cuda")


class EnhanceWorker:
    """Enhances one file per :meth:`run` call (the body of the Ray actor)."""

    def __init__(self, setup: WorkerSetup) -> None:
        import torch

        from sagc.stream.enhance.stages import make_stage

        torch.set_num_threads(setup.threads)
        set_run_tag(setup.run_tag)
        self.setup = setup
        self.stage = make_stage(setup.enhancer, device=setup.device)
        self.settings = self.stage.settings
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._frames = 0
        self._stop = threading.Event()

    def check(self, sources: Sequence[str], folder: str) -> str | None:
        """None when this worker can read every input and write into ``folder``, else what it cannot."""
        shared = "inputs and -o must be on storage every node of the cluster sees"
        for source in sources:
            if not os.access(source, os.R_OK):
                return f"worker {self.name} cannot read {source} ({shared})"
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".sagc-probe-"):
                pass
        except OSError as exc:
            return f"worker {self.name} cannot write into {folder}: {exc.strerror or exc} ({shared})"
        return None

    def progress(self) -> int:
        """Frames enhanced so far of the current file."""
        return self._frames

    def stop(self) -> None:
        """End the current file after its current frame (its partial file stays playable)."""
        self._stop.set()

    def run(self, job: Job) -> ManifestEntry:
        """Enhance one file; every failure of the file itself is in the entry's ``error``."""
        self._frames = 0
        entry = ManifestEntry(job.source, str(job.output), worker=self.name)
        started = time.perf_counter()
        try:
            if job.kind == "video":
                entry = replace(entry, **self._video(job))
            else:
                entry = replace(entry, **self._image(job))
        except TruncatedInput as exc:
            entry = replace(entry, frames=exc.decoded, lost=exc.lost, error=str(exc))
        except SagcError as exc:
            entry = replace(entry, error=str(exc))
        except Exception as exc:  # a file that breaks a library is that file's failure, not the run's
            entry = replace(entry, error=f"{job.source}: {first_line(exc)}")
        return replace(entry, seconds=round(time.perf_counter() - started, 3))

    def _count(self, _frame: object) -> None:
        self._frames += 1

    def _shared(self) -> dict[str, object]:
        """The options video and image jobs take alike."""
        setup = self.setup
        return {
            "compare": setup.compare,
            "stop": self._stop,
            "on_frame": self._count,
            "overwrite": setup.overwrite,
            "max_pixels": setup.max_pixels,
            "limit_flag": "--max-pixels",  # (sagc enhance --ray has it)
        }

    def _video(self, job: Job) -> dict[str, object]:
        result = enhance_video(
            job, self.stage, settings=self.setup.encoder, decoding=self.setup.decoding, **self._shared()
        )
        if result.interrupted:
            return {"frames": result.frames, "output": str(result.output), "error": INTERRUPTED}
        return {"frames": result.frames}

    def _image(self, job: Job) -> dict[str, object]:
        result, failures = enhance_images([job], self.stage, settings=self.settings, **self._shared())
        if failures:
            return {"error": failures[0]}
        if result.interrupted:
            return {"error": INTERRUPTED}
        return {"frames": result.frames}


def connect(address: str) -> Callable[[], None]:
    """Join the Ray cluster at ``address`` (``auto``: the running one, else a new local one)
    and return the call that leaves it (and stops a cluster this call started)."""
    ray = import_ray()
    if address != "auto":
        _reachable(address)
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        ray.init(**quiet) if address == "auto" else ray.init(address=address, **quiet)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
        raise SagcError(
            f"cannot join the Ray cluster at {address}: {first_line(exc)}; "
            "start one with `ray start --head`, or pass --ray auto"
        ) from None
    node = getattr(ray._private.worker, "_global_node", None)
    watcher = reaper.watch() if getattr(node, "head", False) else None  # a cluster we started ends with us

    def leave() -> None:
        ray.shutdown()
        if watcher is not None:
            watcher.terminate()
            watcher.wait()

    return leave


def _reachable(address: str, *, timeout: float = _CONNECT_TIMEOUT) -> None:
    """Fail at once, not after Ray's long retries, when nothing answers at ``address``
    (``host:port`` or ``ray://host:port``; the port defaults to Ray's 6379)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        host, port = address.removeprefix("ray://"), "6379"
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise SagcError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}; check the address "
            "(`ray status` on the head node prints it), or pass --ray auto"
        ) from None


@dataclass
class ArchiveSummary:
    """How a cluster run ended."""

    workers: int
    done: int = 0
    failed: list[ManifestEntry] = field(default_factory=list)
    interrupted: list[ManifestEntry] = field(default_factory=list)
    frames: int = 0
    retried: int = 0
    seconds: float = 0.0


def _worker_count(ray: ModuleType, setup: WorkerSetup, jobs: int, workers: int | None) -> int:
    resources = ray.cluster_resources()
    kind = "GPU" if setup.gpu else "CPU"
    slots = int(resources.get(kind, 0))
    if slots < 1:
        raise SagcError(f"the Ray cluster has no {kind}s for --device {setup.device}; add nodes that have them")
    if workers is not None:
        if workers < 1:
            raise SagcError(f"--workers must be at least 1, got {workers}")
        slots = workers
    return max(1, min(slots, jobs))


class _Pool:
    """The workers of one run: started, checked, replaced when they die."""

    def __init__(self, ray: ModuleType, setup: WorkerSetup, count: int) -> None:
        self.ray = ray
        self._actor = ray.remote(EnhanceWorker).options(
            num_cpus=1, num_gpus=1 if setup.gpu else 0, max_concurrency=3, max_restarts=0
        )
        self._setup = ray.put(setup)
        self.idle = [self._start() for _ in range(count)]

    def _start(self):  # noqa: ANN202 - a Ray actor handle
        return self._actor.remote(self._setup)

    def check(self, sources: list[str], folder: str) -> None:
        ray = self.ray
        checks = [worker.check.remote(sources, folder) for worker in self.idle]
        try:
            problems = ray.get(checks, timeout=_START_TIMEOUT)
        except ray.exceptions.GetTimeoutError:
            raise SagcError(
                f"the cluster did not start {len(self.idle)} workers within {_START_TIMEOUT:.0f} s; "
                "check its free CPUs/GPUs (`ray status`) or pass --workers"
            ) from None
        except ray.exceptions.RayActorError as exc:
            raise SagcError(
                f"a worker could not start: {first_line(exc.__cause__ or exc)}; "
                "sagc and its dependencies must be installed on every node"
            ) from None
        for problem in problems:
            if problem is not None:
                raise SagcError(problem)

    def replace(self, dead) -> object:  # noqa: ANN001 - a Ray actor handle
        self.ray.kill(dead, no_restart=True)
        return self._start()


def _remove_partials(partials: Iterable[Path], *, keep: set[Path], why: str) -> None:
    """Remove temporary files, never one in ``keep`` (inputs and outputs of this run)."""
    for partial in partials:
        if partial.resolve() not in keep:
            partial.unlink(missing_ok=True)
            log.info("removed %s %s", partial, why)


def run_archive(
    jobs: Sequence[Job],
    setup: WorkerSetup,
    *,
    output: str | os.PathLike[str],
    manifest: Manifest,
    retries: int = 2,
    workers: int | None = None,
    stop: threading.Event | None = None,
    on_file: Callable[[ManifestEntry], None] | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> ArchiveSummary:
    """Enhance ``jobs`` on the connected Ray cluster (:func:`connect`), appending to ``manifest``.

    ``retries`` bounds how often a file is tried again after its worker died; ``workers``
    overrides one worker per CPU slot (GPU with a CUDA device). ``on_file`` sees each finished
    entry, ``on_frames`` each count of newly enhanced frames across the cluster.
    """
    ray = import_ray()
    if retries < 0:
        raise SagcError(f"--retries must be at least 0, got {retries}")
    keep = {Path(p).resolve() for job in jobs for p in (job.source, *written_paths(job, compare=setup.compare))}
    stale = tagged_partials(t for job in jobs for t in written_paths(job, compare=setup.compare))
    stop = stop or threading.Event()
    started = time.perf_counter()
    pool = _Pool(ray, setup, _worker_count(ray, setup, len(jobs), workers))
    summary = ArchiveSummary(workers=len(pool.idle))
    pool.check(sorted({job.source for job in jobs}), str(output))
    pending = deque(jobs)
    attempts: dict[Job, int] = {}
    running: dict[object, tuple[object, Job]] = {}  # result ref → (worker, job)
    seen_frames: dict[object, int] = {}  # worker → frames of its current file reported so far
    stopping = False

    def finish(entry: ManifestEntry) -> None:
        if entry.error == INTERRUPTED:
            summary.interrupted.append(entry)
            return
        manifest.write(entry)
        summary.frames += entry.frames
        if entry.ok:
            summary.done += 1
        else:
            summary.failed.append(entry)
        if on_file is not None:
            on_file(entry)

    while pending or running:
        if stop.is_set() and not stopping:
            stopping = True
            pending.clear()
            for worker, _job in running.values():
                worker.stop.remote()
        while pool.idle and pending:
            worker, job = pool.idle.pop(), pending.popleft()
            attempts[job] = attempts.get(job, 0) + 1
            running[worker.run.remote(job)] = (worker, job)
            seen_frames[worker] = 0
        ready, _ = ray.wait(list(running), num_returns=1, timeout=_POLL)
        for ref in ready:
            worker, job = running.pop(ref)
            reported = seen_frames.pop(worker, 0)
            try:
                entry = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                ours = (
                    p for t in written_paths(job, compare=setup.compare) for p in partial_paths(t, tag=setup.run_tag)
                )
                _remove_partials(ours, keep=keep, why="left by a worker that died")
                pool.idle.append(pool.replace(worker))
                tries = attempts[job]
                if tries <= retries and not stopping:
                    summary.retried += 1
                    log.warning("worker died on %s (try %d); trying it again: %s", job.source, tries, first_line(exc))
                    pending.appendleft(job)
                    continue
                entry = ManifestEntry(
                    job.source,
                    str(job.output),
                    error=f"{job.source}: its worker died {tries} time(s): {first_line(exc)}",
                )
            else:
                pool.idle.append(worker)
                if on_frames is not None and entry.frames > reported:
                    on_frames(entry.frames - reported)
            finish(replace(entry, attempts=attempts[job]))
            if entry.ok:  # what an earlier, interrupted run left beside this output
                earlier = (p for t in written_paths(job, compare=setup.compare) for p in stale.get(t, []))
                _remove_partials(earlier, keep=keep, why="left by an earlier run")
        if on_frames is not None and running:
            on_frames(_new_frames(ray, running, seen_frames))
    summary.seconds = time.perf_counter() - started
    return summary


def _new_frames(ray: ModuleType, running: dict[object, tuple[object, Job]], seen: dict[object, int]) -> int:
    """Frames the running workers enhanced since the last call."""
    workers = [worker for worker, _job in running.values()]
    try:
        counts = ray.get([worker.progress.remote() for worker in workers], timeout=_POLL)
    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
        return 0  # a dying worker: its result says so on the next round
    new = 0
    for worker, count in zip(workers, counts, strict=True):
        new += max(0, count - seen.get(worker, 0))
        seen[worker] = count
    return new

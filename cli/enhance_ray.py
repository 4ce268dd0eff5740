"""``sagc enhance --ray``: an archive of files spread over a Ray cluster, with a manifest."""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from sagc.core.errors import SagcError

__all__ = ["run_enhance_on_ray"]

_LISTED_FAILURES = 20  # failures printed one per line; the manifest has them all


def run_enhance_on_ray(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sagc.cli.options import (
        decoding_from_args,
        encoder_settings_from_args,
        enhancer_from_args,
        parse_device,
        set_threads,
        stop_on_signals,
    )
    from sagc.stream.apps.archive import plan_archive
    from sagc.stream.apps.cluster import WorkerSetup, connect, import_ray, run_archive
    from sagc.stream.run.manifest import MANIFEST_NAME, Manifest

    if args.demo:
        raise SagcError("--demo runs on this machine; drop --ray")
    set_threads(args.threads)  # checks it; each worker uses the same count
    if args.workers is not None and args.workers < 1:  # (before the cluster starts)
        raise SagcError(f"--workers must be at least 1, got {args.workers}")
    if args.retries < 0:
        raise SagcError(f"--retries must be at least 0, got {args.retries}")
    import_ray()
    manifest_path = Path(args.output or ".") / MANIFEST_NAME
    if manifest_path.exists() and not (args.resume or args.overwrite):
        raise SagcError(f"{manifest_path} is from an earlier run: pass --resume to go on with it, or --overwrite")
    jobs = plan_archive(args.inputs, args.output, overwrite=args.overwrite, compare=args.compare, resume=args.resume)
    device = parse_device(args.device)
    setup = WorkerSetup(
        enhancer=enhancer_from_args(args),
        device=str(device),
        encoder=encoder_settings_from_args(args),
        decoding=decoding_from_args(args, device),
        compare=args.compare,
        overwrite=args.overwrite,
        max_pixels=args.max_pixels,
        threads=args.threads,
        run_tag=secrets.token_hex(4),
    )
    if not jobs:
        print(f"nothing to do: every output is there (see {manifest_path})")
        return 0
    leave = connect(args.ray)
    try:
        with (
            stop_on_signals() as stopper,
            Manifest(manifest_path, fresh=not args.resume) as manifest,
            tqdm(total=len(jobs), unit="file", disable=args.quiet, desc="files", position=0) as files,
            tqdm(unit="frame", disable=args.quiet, desc="frames", position=1) as frames,
        ):
            summary = run_archive(
                jobs,
                setup,
                output=args.output,
                manifest=manifest,
                retries=args.retries,
                workers=args.workers,
                stop=stopper.event,
                on_file=lambda _entry: files.update(),
                on_frames=frames.update,
            )
    finally:
        leave()
    rate = f"{summary.done / summary.seconds:.2f} files/s, {summary.frames / summary.seconds:.1f} frames/s"
    retried = f", {summary.retried} retried after a worker died" if summary.retried else ""
    print(
        f"enhanced {summary.done} of {len(jobs)} files ({summary.frames} frames) in {summary.seconds:.1f} s "
        f"on {summary.workers} workers: {rate}{retried}; manifest: {manifest_path}"
    )
    for entry in summary.failed[:_LISTED_FAILURES]:
        print(f"sagc: error: {entry.error}", file=sys.stderr)
    if len(summary.failed) > _LISTED_FAILURES:
        print(f"sagc: {len(summary.failed)} files failed in all; see {manifest_path}", file=sys.stderr)
    if stopper.signum is not None:
        partial = ", ".join(entry.output for entry in summary.interrupted) or "none"
        print(f"sagc: interrupted; unfinished files (partial, playable): {partial}; --resume goes on", file=sys.stderr)
        return 128 + stopper.signum
    return 1 if summary.failed else 0

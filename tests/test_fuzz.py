"""Hostile files: seeded byte mutations and truncations of small real MP4, MKV, TS, PNG and JPEG
files through ``sagc enhance``. Every run ends in time with exit 0 or 1 and at most one error line,
never a traceback, never a leftover temporary file, and never touches its input."""

from __future__ import annotations

import faulthandler
import random
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest

from sagc.cli import main

from .conftest import make_clip, scene

CASES_PER_FORMAT = 80  # five formats: 400 runs
SECONDS_PER_RUN = 30.0  # the bound each run must end within
HANG_GUARD = 120  # a run still going after this long dumps every thread's stack and fails the suite


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def _flip(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 24)):
        out[rng.randrange(len(out))] ^= rng.randint(1, 255)
    return bytes(out)


def _overwrite(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    start, length = rng.randrange(len(out)), rng.randint(1, 512)
    out[start : start + length] = rng.randbytes(min(length, len(out) - start))
    return bytes(out)


def _zero(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    start, length = rng.randrange(len(out)), rng.randint(1, 2048)
    out[start : start + length] = bytes(min(length, len(out) - start))
    return bytes(out)


def _splice(data: bytes, rng: random.Random) -> bytes:
    start, length, at = rng.randrange(len(data)), rng.randint(1, 1024), rng.randrange(len(data))
    return data[:at] + data[start : start + length] + data[at:]


MUTATIONS: list[Callable[[bytes, random.Random], bytes]] = [_truncate, _flip, _overwrite, _zero, _splice]


def _image(path: Path) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(scene(3, 64, 48), cv2.COLOR_RGB2BGR))
    return path


def _image_as(ext: str) -> Callable[[Path], Path]:
    return lambda d: _image(d / "in" / f"seed.{ext}")


SOURCES: dict[str, Callable[[Path], Path]] = {
    "mp4": lambda d: make_clip(d / "seed.mp4", size=(64, 48), frames=6, audio=True, brightness=0.4),
    "mkv": lambda d: make_clip(d / "seed.mkv", size=(64, 48), frames=6, audio=True, subtitles=True),
    "ts": lambda d: make_clip(d / "seed.ts", size=(64, 48), frames=6, audio=True),
    "png": lambda d: _image(d / "seed.png"),
    "jpg": lambda d: _image(d / "seed.jpg"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_mutated_files_end_cleanly(tmp_path, identity_weights, capfd, kind):
    original = SOURCES[kind](tmp_path).read_bytes()
    rng = random.Random(f"sagc-fuzz-{kind}")
    work = tmp_path / "cases"
    work.mkdir()
    outcomes = {0: 0, 1: 0}
    for case in range(CASES_PER_FORMAT):
        mutate = MUTATIONS[case % len(MUTATIONS)]
        data = mutate(original, rng)
        source = work / f"in{case}.{kind}"
        source.write_bytes(data)
        output = work / f"out{case}.{'mp4' if kind == 'ts' else kind}"  # .ts is read, not written
        capfd.readouterr()
        faulthandler.dump_traceback_later(HANG_GUARD, exit=True)
        started = time.monotonic()
        try:
            code = main(["enhance", str(source), "-o", str(output), "--weights", str(identity_weights), "-q"])
        finally:
            faulthandler.cancel_dump_traceback_later()
        seconds = time.monotonic() - started
        out, err = capfd.readouterr()
        where = f"{kind} case {case} ({mutate.__name__}): exit {code}, {seconds:.1f} s\n{err}"
        assert code in (0, 1), where
        assert seconds < SECONDS_PER_RUN, where
        assert "Traceback" not in err and "Traceback" not in out, where
        errors = [line for line in err.splitlines() if line.startswith("sagc: error:")]
        assert len(errors) == (1 if code else 0), where
        assert source.read_bytes() == data, where
        assert not [p.name for p in work.iterdir() if ".partial" in p.name], where
        outcomes[code] += 1
        for path in (source, output):
            path.unlink(missing_ok=True)
    print(f"{kind}: {outcomes[0]} runs exit 0, {outcomes[1]} exit 1")
    assert outcomes[1] > 0  # the mutations do break files


CASES_PER_COMMAND = 20


def _config(path: Path) -> Path:
    path.write_text(
        "steps: 1\nbatch_size: 1\ncrop: 32\nresize_to: 40\nsemantics: false\nlr: 0.001\nweights:\n  recon: 1.0\n"
    )
    return path


def _checkpoint(path: Path) -> Path:
    from sagc.models import resolve_weights

    path.write_bytes(resolve_weights("default").read_bytes())
    return path


OTHER_COMMANDS: dict[str, tuple[Callable[[Path], Path], Callable[[Path, Path], list[str]]]] = {
    "eval images": (_image_as("png"), lambda src, d: ["eval", "images", str(src.parent), "--method", "identity",
                                                     "--no-niqe", "--out", str(d / "report"), "--overwrite"]),
    "data darken": (_image_as("jpg"),
                    lambda src, d: ["data", "darken", str(src.parent), str(d / "dark"), "--overwrite"]),
    "data darken video": (lambda d: make_clip(d / "in" / "seed.mp4", size=(64, 48), frames=4, audio=True),
                          lambda src, d: ["data", "darken", str(src), str(d / "dark.mp4"), "--overwrite"]),
    "weights": (lambda d: _checkpoint(d / "in" / "seed.pt"), lambda src, d: ["weights", str(src)]),
    "train config": (lambda d: _config(d / "in" / "seed.yaml"),
                     lambda src, d: ["train", "enhancer", "--config", str(src), "--normal", str(d / "normal"),
                                     "--synthetic-low", str(d / "normal"), "--out", str(d / "run")]),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(OTHER_COMMANDS))
def test_mutated_inputs_of_every_writing_command_end_cleanly(tmp_path, capfd, command):
    make, argv = OTHER_COMMANDS[command]
    (tmp_path / "in").mkdir()
    _image(tmp_path / "normal.png")
    (tmp_path / "normal").mkdir()
    _image(tmp_path / "normal" / "a.png")
    seed = make(tmp_path)
    original = seed.read_bytes()
    rng = random.Random(f"sagc-fuzz-{command}")
    for case in range(CASES_PER_COMMAND):
        mutate = MUTATIONS[case % len(MUTATIONS)]
        data = mutate(original, rng)
        seed.write_bytes(data)
        capfd.readouterr()
        faulthandler.dump_traceback_later(HANG_GUARD, exit=True)
        try:
            code = main(argv(seed, tmp_path))
        finally:
            faulthandler.cancel_dump_traceback_later()
        out, err = capfd.readouterr()
        where = f"{command} case {case} ({mutate.__name__}): exit {code}\n{err}"
        assert code in (0, 1), where
        assert "Traceback" not in err and "Traceback" not in out, where
        assert len([line for line in err.splitlines() if line.startswith("sagc: error:")]) == (1 if code else 0), where
        assert seed.read_bytes() == data, where
        leftovers = [p for p in tmp_path.rglob("*") if ".partial" in p.name]
        assert not leftovers, where


def test_mutated_manifests_read_as_far_as_they_are_whole(tmp_path):
    from sagc.core.errors import SagcError
    from sagc.stream.run.manifest import Manifest, ManifestEntry, read_manifest

    path = tmp_path / "manifest.jsonl"
    with Manifest(path, fresh=True) as manifest:
        for index in range(6):
            manifest.write(ManifestEntry(f"in{index}.mp4", f"out{index}.mp4", frames=index))
    original = path.read_bytes()
    rng = random.Random("sagc-fuzz-manifest")
    for case in range(40):
        path.write_bytes(MUTATIONS[case % len(MUTATIONS)](original, rng))
        try:
            entries = read_manifest(path)
        except SagcError:
            continue
        assert all(isinstance(entry, ManifestEntry) for entry in entries.values())

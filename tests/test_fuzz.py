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

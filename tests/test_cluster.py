"""``sagc enhance --ray``: archives planned, spread over a real Ray cluster on this machine (two
nodes, one worker process each; Ray puts them on the machine's own address), with the manifest,
resume, retries after a killed worker, Ctrl-C, and outputs that match a local run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from ray.cluster_utils import Cluster

from sagc.core.atomic import partial_paths
from sagc.core.errors import SagcError
from sagc.stream.apps.archive import plan_archive
from sagc.stream.apps.cluster import EnhanceWorker, WorkerSetup
from sagc.stream.run.manifest import Manifest, ManifestEntry, read_manifest

from .conftest import make_clip, wait_for_partial


def sagc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sagc", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def frames_of(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def manifest_lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A two-node Ray cluster on this machine; yields its address."""
    nodes = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    nodes.add_node(num_cpus=1)
    yield nodes.address
    nodes.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two clips (one in a subfolder), a picture, and a file that is not a video."""
    root = tmp_path_factory.mktemp("archive")
    make_clip(root / "street.mp4", frames=20, brightness=0.3)
    (root / "night").mkdir()
    make_clip(root / "night" / "car.mp4", frames=30, brightness=0.2, audio=True)
    with av.open(str(root / "street.mp4")) as container:
        next(container.decode(video=0)).to_image().save(root / "night" / "still.png")
    (root / "night" / "broken.mp4").write_bytes(os.urandom(4000))
    (root / "notes.md").write_text("not media: left out")
    return root


# planning and the manifest: no cluster needed


def test_plan_archive_mirrors_folders_and_lists(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    jobs = plan_archive([str(archive)], str(out), overwrite=False)
    assert {(j.kind, j.output.relative_to(out).as_posix()) for j in jobs} == {
        ("video", "street.mp4"),
        ("video", "night/car.mp4"),
        ("video", "night/broken.mp4"),
        ("image", "night/still.png"),
    }
    assert all(Path(j.source).is_absolute() and j.output.is_absolute() for j in jobs)
    listing = tmp_path / "list.txt"
    listing.write_text(f"# clips\n{archive / 'night' / 'car.mp4'}\n\n{archive / 'street.mp4'}\n")
    listed = plan_archive([str(listing)], str(out), overwrite=False)
    assert sorted(j.output.relative_to(out).as_posix() for j in listed) == ["night/car.mp4", "street.mp4"]
    (out / "night").mkdir(parents=True)
    (out / "night" / "car.mp4").write_bytes(b"done before")
    resumed = plan_archive([str(archive)], str(out), overwrite=False, resume=True)
    assert sorted(j.output.relative_to(out).as_posix() for j in resumed) == [
        "night/broken.mp4",
        "night/still.png",
        "street.mp4",
    ]


@pytest.mark.parametrize(
    ("inputs", "output", "message"),
    [
        (["lavfi:testsrc2"], "out", "run the stream"),
        (["missing.mp4"], "out", "input not found"),
        (["list.txt"], "out", "list.txt:2: no such file"),
        (["clip.mp4"], None, "give -o FOLDER"),
        (["clip.mp4"], "clip.mp4", "would overwrite the input"),
    ],
)
def test_plan_archive_refuses_with_one_line(
    tmp_path: Path, inputs: list[str], output: str | None, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    make_clip(tmp_path / "clip.mp4", frames=2)
    (tmp_path / "list.txt").write_text("clip.mp4\ngone.mp4\n")
    if output == "clip.mp4":
        output, inputs = str(tmp_path), [str(tmp_path)]  # the folder's clip would land on itself
    with pytest.raises(SagcError, match=message):
        plan_archive(inputs, output, overwrite=False)


def test_manifest_keeps_the_newest_line_and_survives_a_cut_line(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    with Manifest(path, fresh=True) as manifest:
        manifest.write(ManifestEntry("a.mp4", "out/a.mp4", error="worker died"))
        manifest.write(ManifestEntry("b.mp4", "out/b.mp4", frames=5))
    with path.open("a") as f:
        f.write('{"input": "c.mp4", "outp')  # a crash mid-line
    with Manifest(path, fresh=False) as manifest:
        manifest.write(ManifestEntry("a.mp4", "out/a.mp4", frames=7, attempts=2))
    entries = read_manifest(path)
    assert set(entries) == {"a.mp4", "b.mp4"}
    assert entries["a.mp4"].ok and entries["a.mp4"].frames == 7 and entries["a.mp4"].attempts == 2


def test_worker_check_names_what_it_cannot_reach(tmp_path: Path, weights: Path) -> None:
    from sagc.models import load_enhancer

    worker = EnhanceWorker(WorkerSetup(enhancer=load_enhancer(str(weights))))
    make_clip(tmp_path / "clip.mp4", frames=2)
    assert worker.check([str(tmp_path / "clip.mp4")], str(tmp_path / "out")) is None
    assert "cannot read" in worker.check([str(tmp_path / "elsewhere.mp4")], str(tmp_path / "out"))
    (tmp_path / "file").write_text("")
    assert "cannot write into" in worker.check([str(tmp_path / "clip.mp4")], str(tmp_path / "file" / "out"))


# on the cluster


LOSSLESS = ("--crf", "0")  # x264's bytes vary from run to run; lossless, its decoded frames do not


def test_cluster_outputs_match_a_local_run(cluster: str, archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "ray"
    result = sagc("enhance", str(archive), "-o", str(out), "--ray", cluster, "-q", *LOSSLESS)
    assert result.returncode == 1, result.stderr  # the broken file failed; the others are done
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("sagc: error:")]
    assert len(errors) == 1 and "broken.mp4" in errors[0], result.stderr
    assert "enhanced 3 of 4 files" in result.stdout
    lines = {Path(line["input"]).name: line for line in manifest_lines(out)}
    assert set(lines) == {"street.mp4", "car.mp4", "still.png", "broken.mp4"}
    assert lines["broken.mp4"]["error"] and not (out / "night" / "broken.mp4").exists()
    assert [lines[n]["frames"] for n in ("street.mp4", "car.mp4", "still.png")] == [20, 30, 1]
    assert all(lines[n]["error"] is None and lines[n]["worker"] for n in ("street.mp4", "car.mp4", "still.png"))
    local = tmp_path / "local"
    inputs = [archive / "street.mp4", archive / "night" / "car.mp4", archive / "night" / "still.png"]
    assert sagc("enhance", *map(str, inputs), "-o", f"{local}/", "-q", *LOSSLESS).returncode == 0
    for name, mirrored in [("street.mp4", "street.mp4"), ("car.mp4", "night/car.mp4")]:
        assert np.array_equal(frames_of(out / mirrored), frames_of(local / name)), name
    assert (out / "night" / "still.png").read_bytes() == (local / "still.png").read_bytes()
    assert not list(out.rglob("*.partial*"))


def test_resume_skips_finished_files(cluster: str, archive: Path, tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text(
        f"{archive / 'street.mp4'}\n{archive / 'night' / 'car.mp4'}\n{archive / 'night' / 'still.png'}\n"
    )
    out = tmp_path / "out"
    assert sagc("enhance", str(listing), "-o", str(out), "--ray", cluster, "-q").returncode == 0
    again = sagc("enhance", str(listing), "-o", str(out), "--ray", cluster, "-q")
    assert again.returncode != 0 and "--resume" in again.stderr and "Traceback" not in again.stderr
    kept = (out / "street.mp4").stat().st_mtime_ns
    (out / "night" / "car.mp4").unlink()
    resumed = sagc("enhance", str(listing), "-o", str(out), "--ray", cluster, "--resume", "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert "enhanced 1 of 1 files" in resumed.stdout
    assert (out / "street.mp4").stat().st_mtime_ns == kept
    assert len(frames_of(out / "night" / "car.mp4")) == 30
    assert len(manifest_lines(out)) == 4
    done = sagc("enhance", str(listing), "-o", str(out), "--ray", cluster, "--resume", "-q")
    assert done.returncode == 0 and "nothing to do" in done.stdout


def _running_worker(timeout: float = 60.0) -> int:
    """The pid of a Ray worker process busy in ``EnhanceWorker.run`` (Ray titles it so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"ray::EnhanceWorker.run"):
                return int(entry.name)
        time.sleep(0.05)
    raise AssertionError("no worker became busy")


def test_killed_worker_leaves_no_partial_and_the_file_is_retried(cluster: str, long_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    driver = subprocess.Popen(
        [sys.executable, "-m", "sagc", "enhance", str(long_clip), "-o", str(out), "--ray", cluster, "-q", *LOSSLESS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        victim = _running_worker()
        wait_for_partial(out / "long.mp4")
        os.kill(victim, signal.SIGKILL)
        stdout, stderr = driver.communicate(timeout=240)
    finally:
        driver.kill()
    assert driver.returncode == 0, stderr
    assert "1 retried after a worker died" in stdout
    [line] = manifest_lines(out)
    assert line["error"] is None and line["attempts"] == 2 and line["frames"] == 900
    assert not line["worker"].endswith(f":{victim}")
    assert not partial_paths(out / "long.mp4")
    local = tmp_path / "local.mp4"
    assert sagc("enhance", str(long_clip), "-o", str(local), "-q", *LOSSLESS).returncode == 0
    assert np.array_equal(frames_of(out / "long.mp4"), frames_of(local))


def test_ctrl_c_stops_the_cluster_work_and_resume_finishes_it(cluster: str, long_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "sagc", "enhance", str(long_clip), "-o", str(out), "--ray", cluster, "-q"]
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_partial(out / "long.mp4")
        driver.send_signal(signal.SIGINT)
        _stdout, stderr = driver.communicate(timeout=120)
    finally:
        driver.kill()
    assert driver.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    [partial] = partial_paths(out / "long.mp4")
    assert 0 < len(frames_of(partial)) < 900  # what was written plays
    assert not (out / "long.mp4").exists() and (out / "manifest.jsonl").read_text() == ""
    resumed = sagc(*command[3:], "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert len(frames_of(out / "long.mp4")) == 900
    assert not partial_paths(out / "long.mp4")  # the interrupted run's partial is gone once the file is done


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--resume"], "--resume and --workers go with --ray"),
        (["--ray", "127.0.0.1:1"], "cannot reach the Ray cluster at 127.0.0.1:1"),
        (["--ray", "auto", "--demo"], "--demo runs on this machine"),
    ],
)
def test_cluster_options_refused_with_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=2)
    inputs = [] if "--demo" in extra else [str(clip)]
    result = sagc("enhance", *inputs, "-o", str(tmp_path / "out"), *extra)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("sagc: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr


def test_compare_and_run_time_settings_hold_on_the_cluster(cluster: str, archive: Path, tmp_path: Path) -> None:
    inputs = [str(archive / "street.mp4"), str(archive / "night" / "still.png")]
    flags = ["--compare", "--denoise", "0", "--ev", "0.5", "-q", *LOSSLESS]
    out, local = tmp_path / "ray", tmp_path / "local"
    result = sagc("enhance", *inputs, "-o", str(out), "--ray", cluster, *flags)
    assert result.returncode == 0, result.stderr
    assert sagc("enhance", *inputs, "-o", f"{local}/", *flags).returncode == 0
    assert np.array_equal(frames_of(out / "street.mp4"), frames_of(local / "street.mp4"))
    assert np.array_equal(frames_of(out / "street_compare.mp4"), frames_of(local / "street_compare.mp4"))
    assert frames_of(out / "street_compare.mp4").shape[2] == 2 * frames_of(out / "street.mp4").shape[2]
    assert (out / "still_compare.png").read_bytes() == (local / "still_compare.png").read_bytes()
    assert (out / "still.png").read_bytes() == (local / "still.png").read_bytes()
    default = tmp_path / "default.mp4"
    assert sagc("enhance", inputs[0], "-o", str(default), "-q", *LOSSLESS).returncode == 0
    assert not np.array_equal(frames_of(out / "street.mp4"), frames_of(default))  # the settings took effect

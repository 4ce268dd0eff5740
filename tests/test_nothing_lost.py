"""Every command that writes keeps the guarantees of ``sagc enhance``: no input replaced, no
earlier output replaced without --overwrite, a clear one-line error for what cannot be done."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch

from sagc.cli import main

from .conftest import one_error, scene


def _images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), scene(3 * i, 64, 48))


def test_eval_never_replaces_an_input_named_like_its_report(tmp_path, capsys):
    folder = tmp_path / "evx"
    _images(folder, ["a.png", "contact_sheet.png"])
    before = (folder / "contact_sheet.png").read_bytes()
    assert main(["eval", "images", str(folder), "--method", "identity", "--out", str(folder)]) == 1
    line = one_error(capsys)
    assert "contact_sheet.png" in line and "input" in line
    assert (folder / "contact_sheet.png").read_bytes() == before
    assert not (folder / "report.json").exists()  # refused before any work


def test_eval_replaces_an_earlier_report_only_with_overwrite(tmp_path, capsys):
    _images(tmp_path / "in", ["a.png"])
    out = tmp_path / "report"
    args = ["eval", "images", str(tmp_path / "in"), "--method", "identity", "--out", str(out)]
    assert main(args) == 0
    (out / "report.csv").write_text("mine")
    capsys.readouterr()
    assert main(args) == 1
    assert "--overwrite" in one_error(capsys)
    assert (out / "report.csv").read_text() == "mine"
    assert main([*args, "--overwrite"]) == 0
    assert (out / "report.csv").read_text() != "mine"


def test_eval_report_through_a_link_to_an_input_is_refused(tmp_path, capsys):
    _images(tmp_path / "in", ["a.png"])
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.json").symlink_to(tmp_path / "in" / "a.png")
    args = ["eval", "images", str(tmp_path / "in"), "--method", "identity", "--out", str(out), "--overwrite"]
    assert main(args) == 1
    assert "input" in one_error(capsys)
    assert cv2.imread(str(tmp_path / "in" / "a.png")) is not None


def test_eval_images_refuses_two_images_of_one_stem(tmp_path, capsys):
    _images(tmp_path / "in", ["dup.png", "dup.jpg"])
    assert main(["eval", "images", str(tmp_path / "in"), "--method", "identity", "--out", str(tmp_path / "r")]) == 1
    line = one_error(capsys)
    assert "dup.jpg" in line and "dup.png" in line and "ambiguous" in line


def test_eval_report_that_cannot_be_written_is_one_clear_line(tmp_path):
    _images(tmp_path / "in", ["a.png"])
    out = tmp_path / "report"

    def small_files() -> None:  # a file-size limit: writes past 300 bytes fail (EFBIG), as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))

    args = ["eval", "images", str(tmp_path / "in"), "--method", "identity", "--out", str(out)]
    run = subprocess.run(
        [sys.executable, "-m", "sagc", *args], capture_output=True, text=True, preexec_fn=small_files, timeout=300
    )
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("sagc: error:")]
    assert len(errors) == 1 and "cannot write the report" in errors[0] and "Traceback" not in run.stderr
    assert not any(p.name.endswith(".partial") or ".partial." in p.name for p in out.iterdir())


@pytest.mark.parametrize(
    "setting,words",
    [
        ("lr=-1", "lr must be"),
        ("lr=.nan", "lr must be"),
        ("batch_size=0", "batch_size must be"),
        ("crop=100000", "crop must be"),
        ("weights.bright=nan", "weights.bright must be"),
        ("steps=0", "steps must be"),
    ],
)
def test_train_refuses_bad_config_values_before_work(tmp_path, capsys, setting, words):
    _images(tmp_path / "in", ["a.png"])
    out = tmp_path / "run"
    args = ["train", "enhancer", "--normal", str(tmp_path / "in"), "--synthetic-low", str(tmp_path / "in")]
    assert main([*args, "--out", str(out), "--set", setting]) == 1
    assert words in one_error(capsys)
    assert not out.exists()


def test_train_refuses_a_binary_config_and_a_missing_cuda_device(tmp_path, capsys):
    _images(tmp_path / "in", ["a.png"])
    config = tmp_path / "config.yaml"
    config.write_bytes(bytes(range(256)) * 4)
    args = ["train", "enhancer", "--normal", str(tmp_path / "in"), "--out", str(tmp_path / "run")]
    assert main([*args, "--config", str(config)]) == 1
    assert "not a text file" in one_error(capsys)
    if not torch.cuda.is_available():
        assert main([*args, "--set", "device=cuda", "--set", "steps=1"]) == 1
        assert "no CUDA device" in one_error(capsys)


def test_threads_are_capped_with_a_clear_line(capsys):
    for count in ("100000", "1000"):
        assert main(["enhance", "--demo", "--threads", count]) == 1
        assert "--threads must be between 1 and" in one_error(capsys)


def _with_provenance(tmp_path: Path, provenance: object) -> Path:
    from sagc.models import resolve_weights

    checkpoint = torch.load(resolve_weights("default"), weights_only=True)
    checkpoint["provenance"] = provenance
    path = tmp_path / "odd.pt"
    torch.save(checkpoint, path)
    return path


def test_weights_shows_any_provenance_briefly(tmp_path):
    bomb: list = []
    for _ in range(64):  # shared references: 2^64 leaves when expanded
        bomb = [bomb, bomb]
    cases = {"bomb": {"config": bomb}, "list": [1, 2, 3]}
    for name, provenance in cases.items():
        (tmp_path / name).mkdir()
        path = _with_provenance(tmp_path / name, provenance)
        run = subprocess.run(
            [sys.executable, "-m", "sagc", "weights", str(path)], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr and len(run.stdout) < 10_000
        assert "provenance" in run.stdout or "config:" in run.stdout


def test_a_folder_means_every_video_and_image_below_it_mirrored(tmp_path, weights, capsys):
    from .conftest import make_clip

    folder = tmp_path / "in"
    _images(folder, ["a.png"])
    (folder / "clips").mkdir()
    make_clip(folder / "clips" / "c.mp4", frames=3)
    out = folder / "out"  # an output folder inside the input folder
    args = ["enhance", str(folder), "-o", str(out), "--weights", str(weights), "-q"]
    assert main(args) == 0
    assert (out / "a.png").is_file() and (out / "clips" / "c.mp4").is_file()
    capsys.readouterr()
    assert main([*args, "--overwrite"]) == 0  # a second run takes no earlier output as input
    assert not (out / "out").exists()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["a.png", "clips/c.mp4"]


def test_an_image_whose_target_appears_meanwhile_keeps_its_finished_output(tmp_path):
    from sagc.core.atomic import atomic_write
    from sagc.core.errors import SagcError

    target = tmp_path / "same.png"

    def write(tmp: Path) -> None:
        tmp.write_bytes(b"ours")
        target.write_bytes(b"theirs")  # another run published first

    with pytest.raises(SagcError) as caught:
        atomic_write(target, write, overwrite=False)
    waiting = Path(str(caught.value).split("the finished output is ")[1].split(" ")[0])
    assert waiting.read_bytes() == b"ours" and target.read_bytes() == b"theirs"


def test_damaged_mpeg_ts_keeps_every_decodable_frame(tmp_path, weights, capsys):
    """A few KB of damage at places through an MPEG-TS with audio: whatever it hits (video, or
    an audio packet the MP4 muxer refuses), the readable frames are written, the damage counted
    and the run exits 1 with the truth, never "nothing was kept"."""
    import random

    import av

    from .conftest import make_clip

    clip = make_clip(tmp_path / "in.ts", audio=True, frames=90, rate=30)
    data = clip.read_bytes()
    kept = 0
    for seed in range(10):
        rng = random.Random(seed)
        start = rng.randrange(len(data) // 4, 3 * len(data) // 4)
        damaged = bytearray(data)
        damaged[start : start + 4000] = bytes(rng.randrange(256) for _ in range(len(damaged[start : start + 4000])))
        source = tmp_path / f"damaged{seed}.ts"
        source.write_bytes(bytes(damaged))
        out = tmp_path / f"out{seed}.mp4"
        code = main(["enhance", str(source), "-o", str(out), "--weights", str(weights), "-q"])
        err = capsys.readouterr().err
        assert "nothing was kept" not in err and "Traceback" not in err
        if code == 1:
            assert "truncated or corrupt" in err
        with av.open(str(out)) as check:
            kept += sum(1 for _ in check.decode(video=0))
    assert kept > 10 * 60  # most frames of every damaged copy


def test_the_ray_manifest_is_never_written_through_a_link(tmp_path):
    from sagc.core.errors import SagcError
    from sagc.stream.run.manifest import Manifest

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "manifest.jsonl").symlink_to(victim)
    for fresh in (True, False):
        with pytest.raises(SagcError, match="symbolic link"):
            Manifest(tmp_path / "out" / "manifest.jsonl", fresh=fresh)
    assert victim.read_text() == "keep me"


def test_ray_outputs_inside_the_input_folder_are_never_inputs_again(tmp_path):
    from sagc.stream.apps.archive import plan_archive

    folder = tmp_path / "in"
    _images(folder, ["r1.png"])
    out = folder / "out"
    _images(out, ["r1.png"])  # an earlier run's output
    jobs = plan_archive([str(folder)], str(out), overwrite=True, resume=False)
    assert [Path(job.source).name for job in jobs] == ["r1.png"] and all(
        "out" not in Path(j.source).parts for j in jobs
    )
    assert plan_archive([str(folder)], str(out), overwrite=False, resume=True) == []  # finished: nothing to do


def test_a_dead_workers_cleanup_removes_only_its_runs_temporary_files(tmp_path):
    from sagc.core.atomic import partial_paths, set_run_tag, temporary_path
    from sagc.stream.apps.cluster import _remove_partials
    from sagc.stream.run.jobs import Job

    out = tmp_path / "out"
    out.mkdir()
    job = Job("video", str(tmp_path / "in" / "r1.mp4"), out / "r1.mp4")
    other = Job("video", str(tmp_path / "in" / "r1.abcdef.partial.mp4"), out / "r1.abcdef.partial.mp4")
    other.output.write_bytes(b"a finished output named like a partial")
    users = out / "r1.123456.partial.mp4"
    users.write_bytes(b"the user's own file")
    try:
        set_run_tag("0a1b2c3d")
        ours = temporary_path(job.output)
    finally:
        set_run_tag("")
    keep = {p.resolve() for j in (job, other) for p in (Path(j.source), j.output)}
    _remove_partials(partial_paths(job.output, tag="0a1b2c3d"), keep=keep, why="in a test")
    assert not ours.exists()
    assert other.output.read_bytes().startswith(b"a finished") and users.read_bytes() == b"the user's own file"


@pytest.mark.parametrize(
    ("flag", "value", "words"), [("--workers", "0", "--workers must be"), ("--retries", "-1", "--retries must be")]
)
def test_ray_counts_are_refused_before_any_cluster_starts(tmp_path, capsys, flag, value, words):
    pytest.importorskip("ray")
    _images(tmp_path / "in", ["a.png"])
    args = ["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--ray", "127.0.0.1:1", flag, value]
    assert main(args) == 1
    assert words in one_error(capsys)  # not "cannot reach the Ray cluster": checked before connecting


def test_a_recording_that_cannot_be_written_is_one_clear_line(tmp_path, weights):
    out = tmp_path / "live.mp4"

    def small_files() -> None:  # writes past 3 KB fail (EFBIG), as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (3_000, 3_000))

    source = "lavfi:testsrc2=size=320x240:rate=30"
    args = ["preview", "--source", source, "--weights", str(weights), "--no-window", "--record", str(out)]
    run = subprocess.run(
        [sys.executable, "-m", "sagc", *args, "--frames", "90"],
        capture_output=True,
        text=True,
        preexec_fn=small_files,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("sagc: error:")]
    assert len(errors) == 1 and "cannot record to" in errors[0] and "Errno" not in errors[0], run.stderr
    assert not out.exists() and not list(tmp_path.glob("*.partial*"))


def test_a_refused_number_is_shown_as_given(capsys):
    assert main(["enhance", "--demo", "--ev", "3.0000001"]) == 1
    assert "got 3.0000001" in one_error(capsys)


def test_outputs_of_several_inputs_inside_one_of_them_are_never_inputs_again(tmp_path):
    from sagc.stream.run.jobs import plan_jobs

    first, second = tmp_path / "in", tmp_path / "other"
    _images(first, ["a.png"])
    _images(second, ["b.png"])
    out = first / "out"
    _images(out / "other", ["b.png"])  # the second input's output from an earlier run
    jobs = plan_jobs([str(first), str(second)], str(out), overwrite=True)
    assert sorted(Path(job.source).relative_to(tmp_path).as_posix() for job in jobs) == ["in/a.png", "other/b.png"]


def test_an_audio_packet_the_muxer_refuses_is_dropped_and_counted(tmp_path):
    """A damaged stream can hand the muxer an audio packet whose timestamps go backwards, which
    the MP4 muxer refuses as an invalid argument: it is dropped and counted like a corrupt one,
    and the file keeps every frame and the rest of the audio."""
    import av

    from sagc.stream.media.frame import Frame
    from sagc.stream.media.sinks import EncoderSink
    from sagc.stream.media.sources import VideoSource

    from .conftest import make_clip

    clip = make_clip(tmp_path / "in.mkv", audio=True, frames=12)
    out = tmp_path / "out.mp4"
    with VideoSource(str(clip)) as source:
        sink = EncoderSink(out, source.info, passthrough=source.passthrough_streams)
        early: av.Packet | None = None
        for item in source:
            if isinstance(item, Frame):
                sink.write_frame(item)
                continue
            if early is None and item.dts is not None and item.dts > 0:
                early = av.Packet(bytes(item))  # a copy: the muxer takes the packet it is given
                early.pts, early.dts, early.time_base, early.stream = item.pts, item.dts, item.time_base, item.stream
            sink.write_packet(item)
        assert early is not None
        sink.write_packet(early)  # its timestamps are behind the ones already written
        sink.close()
    assert sink.dropped_packets == 1
    with av.open(str(out)) as check:
        assert check.streams.audio and sum(1 for _ in check.decode(video=0)) == 12

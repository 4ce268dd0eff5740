"""`sagc enhance` end to end, as a user runs it: real processes, real files, real signals."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from sagc.models import named_weights

from .conftest import immerkaer, make_clip


def sagc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sagc", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def assert_clean_error(result: subprocess.CompletedProcess[str], pattern: str) -> None:
    """Non-zero exit, exactly one ``sagc: error:`` line mentioning ``pattern``, no traceback."""
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("sagc: error:")]
    assert len(errors) == 1, result.stderr
    assert pattern in errors[0], errors[0]


def video_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_clip(tmp_path / "night.mp4", frames=12, audio=True, brightness=0.3)


def test_enhance_video_default_output(tmp_path, clip, weights):
    result = sagc("enhance", str(clip), "--weights", str(weights), "-q")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "night_enhanced.mp4"
    assert "wrote" in result.stdout and str(out) in result.stdout
    assert video_frames(out) == 12
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
    assert not list(tmp_path.glob("*.partial*"))


def test_refuses_existing_output_unless_overwrite(tmp_path, clip, weights):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    assert_clean_error(sagc("enhance", str(clip), "-o", str(out), "--weights", str(weights)), "--overwrite")
    assert out.read_bytes() == b"precious"
    result = sagc("enhance", str(clip), "-o", str(out), "--weights", str(weights), "--overwrite", "-q")
    assert result.returncode == 0, result.stderr
    assert video_frames(out) == 12


def test_never_overwrites_input(clip, weights):
    before = clip.read_bytes()
    args = ("enhance", str(clip), "-o", str(clip), "--weights", str(weights), "--overwrite")
    assert_clean_error(sagc(*args), "would overwrite the input")
    assert clip.read_bytes() == before


def test_image_folder_and_compare(tmp_path, weights):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.jpg"):
        cv2.imwrite(str(folder / name), (rng.random((24, 32, 3)) * 60).astype(np.uint8))
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    result = sagc("enhance", str(folder), "-o", str(out) + "/", "--weights", str(weights), "--compare", "-q")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a.png", "a_compare.png", "b.jpg", "b_compare.jpg"]
    assert cv2.imread(str(out / "a_compare.png")).shape == (24, 64, 3)
    assert cv2.imread(str(out / "a.png")).mean() > cv2.imread(str(folder / "a.png")).mean()
    result = sagc("enhance", str(folder), "--weights", str(weights), "-q")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "photos_enhanced").iterdir()) == ["a.png", "b.jpg"]


def test_denoise_option(tmp_path, identity_weights):
    # with γ = 1 the enhancer only filters: --denoise K must be OpenCV's bilateral filter with
    # colour σ = K × Immerkær's noise estimate (written out independently in conftest)
    noisy = np.clip(60 + np.random.default_rng(1).normal(0, 6, (40, 56, 3)), 0, 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), noisy)  # read back as BGR: the enhancer sees noisy[..., ::-1]
    for strength in ("0", "4"):
        out = tmp_path / f"d{strength}.png"
        result = sagc("enhance", str(tmp_path / "in.png"), "-o", str(out), "--weights", str(identity_weights),
                      "--denoise", strength, "-q")  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert np.array_equal(cv2.imread(str(tmp_path / "d0.png")), noisy)
    want = cv2.bilateralFilter(noisy, 5, 4 * immerkaer(noisy[..., ::-1]), 3)
    got = cv2.imread(str(tmp_path / "d4.png"))
    assert np.abs(got.astype(int) - want).max() <= 1 and not np.array_equal(got, noisy)


def test_corrupt_image_in_folder_is_reported_and_others_written(tmp_path, weights):
    folder = tmp_path / "mixed"
    folder.mkdir()
    cv2.imwrite(str(folder / "good.png"), np.full((10, 12, 3), 30, np.uint8))
    (folder / "bad.png").write_bytes(b"\x89PNG broken")
    result = sagc("enhance", str(folder), "-o", str(tmp_path / "out"), "--weights", str(weights), "-q")
    assert_clean_error(result, "bad.png")
    assert (tmp_path / "out" / "good.png").exists()
    assert not (tmp_path / "out" / "bad.png").exists()


def test_several_inputs_into_folder(tmp_path, clip, weights):
    image = tmp_path / "still.png"
    cv2.imwrite(str(image), np.full((10, 12, 3), 30, np.uint8))
    out = tmp_path / "results"
    result = sagc("enhance", str(clip), str(image), "-o", str(out), "--weights", str(weights), "-q")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["night.mp4", "still.png"]


def _zero_frame_video(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4800), np.float32), format="flt", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _truncated(path: Path) -> Path:
    full = make_clip(path.with_name("full.mkv"), frames=48)
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    "make_input,extra,pattern",
    [
        (lambda d: d / "missing.mp4", (), "input not found"),
        (lambda d: (d / "empty").mkdir() or d / "empty", (), "no videos or images"),
        (lambda d: (d / "junk.mp4").write_bytes(b"junk" * 500) and d / "junk.mp4", (), "not a media file"),
        (lambda d: _zero_frame_video(d / "zero.mkv"), (), "has no video frames"),
        (lambda d: _zero_frame_video(d / "zero.mp4"), (), "has no video frames"),
        (lambda d: _audio_only(d / "sound.m4a"), (), "has no video stream"),
        (lambda d: _truncated(d / "cut.mkv"), (), "lost"),
        (lambda d: make_clip(d / "ok.mp4", frames=2), ("-o", "{d}/x.avi"), "unknown video output extension"),
        (
            lambda d: make_clip(d / "ok.mp4", frames=2),
            ("-o", "{d}/x.mp4", "--codec", "nope"),
            "unknown or unavailable encoder",
        ),
        (lambda d: make_clip(d / "ok.mp4", frames=2), ("-o", "{d}/ok.mp4/x.mp4"), "is a file, not a directory"),
        (lambda d: make_clip(d / "ok.mp4", frames=2), ("--pix-fmt", "nv99"), "cannot encode pixel format"),
        (lambda d: make_clip(d / "ok.mp4", frames=2), ("--crf", "99"), "--crf"),
        (lambda d: make_clip(d / "ok.mp4", frames=2), ("--denoise", "-1"), "denoise must be a finite number"),
        (lambda d: make_clip(d / "ok.mp4", frames=2), ("--scale", "0.5"), "scale must be a finite number"),
    ],
    ids=[
        "missing",
        "empty-dir",
        "not-media",
        "zero-frames-mkv",
        "zero-frames-mp4",
        "audio-only",
        "truncated",
        "unknown-ext",
        "unknown-codec",
        "unwritable-dir",
        "bad-pix-fmt",
        "bad-crf",
        "bad-denoise",
        "bad-scale",
    ],
)
def test_bad_inputs_give_one_clear_line(tmp_path, weights, make_input, extra, pattern):
    source = make_input(tmp_path)
    args = [arg.format(d=tmp_path) for arg in extra]
    assert_clean_error(sagc("enhance", str(source), *args, "--weights", str(weights), "-q"), pattern)


def test_bad_weights(tmp_path, clip):
    assert_clean_error(sagc("enhance", str(clip), "--weights", str(tmp_path / "no.pt")), "weights file not found")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x04junk")
    assert_clean_error(sagc("enhance", str(clip), "--weights", str(junk)), "not a sagc checkpoint")
    assert_clean_error(sagc("enhance", str(clip), "--weights", str(clip)), "not a sagc checkpoint")


def test_http_url_input(tmp_path, weights):
    """A real HTTP server on loopback serving a real clip: the URL path of FrameSource."""
    import functools
    import http.server
    import threading

    served = tmp_path / "www"
    served.mkdir()
    make_clip(served / "cam.mp4", frames=10, audio=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cam.mp4"
        out = tmp_path / "from_http.mp4"
        result = sagc("enhance", url, "-o", str(out), "--weights", str(weights), "-q")
        assert result.returncode == 0, result.stderr
        assert video_frames(out) == 10
        assert_clean_error(sagc("enhance", url, "--weights", str(weights)), "give -o OUTPUT")
        missing = sagc("enhance", url.replace("cam", "nope"), "-o", str(tmp_path / "x.mp4"), "--weights", str(weights))
        assert_clean_error(missing, "cannot open")
    finally:
        server.shutdown()
        server.server_close()


def test_debug_shows_traceback(tmp_path, weights):
    result = sagc("--debug", "enhance", str(tmp_path / "missing.mp4"), "--weights", str(weights))
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_demo_without_or_with_default_weights(tmp_path):
    result = sagc("enhance", "--demo", "-o", str(tmp_path / "demo"), "-q")
    if "default" in named_weights():
        assert result.returncode == 0, result.stderr
        assert video_frames(tmp_path / "demo" / "enhanced_compare.mp4") == 120
    else:
        assert_clean_error(result, "no default weights are installed")


def test_demo_runs_with_given_weights(tmp_path, weights):
    result = sagc("enhance", "--demo", "-o", str(tmp_path / "demo"), "--weights", str(weights), "-q")
    assert result.returncode == 0, result.stderr
    demo = tmp_path / "demo"
    assert video_frames(demo / "dark_input.mp4") == 120
    with av.open(str(demo / "enhanced_compare.mp4")) as c:
        assert c.streams.video[0].width == 1280
        assert [s.type for s in c.streams] == ["video", "audio"]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_leaves_playable_partial_output(tmp_path, weights, sig, code):
    out = tmp_path / "live.mp4"
    partials = lambda: list(tmp_path.glob("live.*.partial.mp4"))  # noqa: E731
    source = "lavfi:testsrc2=size=320x240:rate=30:duration=600"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sagc", "enhance", source, "-o", str(out), "--weights", str(weights), "-q"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not partials() or partials()[0].stat().st_size < 20_000):
        time.sleep(0.2)
    (partial,) = partials()
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert f"written to {partial}" in stderr
    assert not out.exists()
    assert video_frames(partial) > 0


def test_default_weights_leave_a_well_exposed_picture_alone(tmp_path):
    rng = np.random.default_rng(3)
    # texture in 4×4 blocks, not pixel noise (noise for its level is the decision's evidence of a dark capture)
    texture = np.clip(90 + 40 * rng.standard_normal((12, 16, 3)), 0, 255).astype(np.uint8)
    picture = np.ascontiguousarray(texture.repeat(4, axis=0).repeat(4, axis=1))
    picture[:8] = 250  # a strip of sky: highlights, and a mean luma above the gate's ramp
    cv2.imwrite(str(tmp_path / "day.png"), picture)
    outputs = {}
    for gate in ("on", "off"):
        outputs[gate] = tmp_path / f"{gate}.png"
        result = sagc("enhance", str(tmp_path / "day.png"), "-o", str(outputs[gate]), "--exposure-gate", gate)
        assert result.returncode == 0, result.stderr
    assert np.array_equal(cv2.imread(str(outputs["on"])), picture)  # the default weights' gate is on
    assert cv2.imread(str(outputs["off"])).mean() > picture.mean() + 10


def test_bench_steps_of_the_rgb_path(tmp_path, weights):
    """A 4:4:4 source goes through RGB: the bench times the conversions and the RGB steps."""
    clip = make_clip(tmp_path / "full.mp4", pix_fmt="yuv444p", frames=12)
    out = tmp_path / "bench.json"
    result = sagc("bench", str(clip), "--frames", "12", "--weights", str(weights), "--json", str(out))
    assert result.returncode == 0, result.stderr
    steps = ("convert to RGB", "downscale", "estimate", "upsample", "apply", "convert from RGB")
    assert set(steps) <= set(json.loads(out.read_text())["step_ms"])


def test_bench_json_has_every_field(tmp_path, weights):
    out = tmp_path / "bench.json"
    args = ("bench", "--synthetic", "160x96@30", "--frames", "20", "--weights", str(weights), "--json", str(out))
    result = sagc(*args, "--denoise", "3")
    assert result.returncode == 0, result.stderr
    assert "end-to-end / pass-through" in result.stdout
    assert "scale 2, gain 1, denoise 3, gate off, guide 0, ev 0, smooth 0" in result.stdout
    figures = json.loads(out.read_text())
    for key in (
        "decode_fps",
        "passthrough_fps",
        "stage_fps",
        "estimator_fps",
        "enhance_fps",
        "ratio_enhance_to_passthrough",
        "peak_rss_mb",
    ):
        assert figures[key] > 0, key
    assert set(figures["stage_ms"]) == {"decode", "enhance", "encode"}
    # where a frame's milliseconds go on the CPU 8-bit path, here in the decoder's 4:2:0 planes
    steps = ("downscale", "estimate", "noise reduction", "chroma", "upsample", "apply")
    assert set(figures["step_ms"]) == set(steps)
    assert all(figures["step_ms"][name]["p95"] >= figures["step_ms"][name]["p50"] > 0 for name in steps)
    assert set(figures["stage_step_ms"]) == set(steps)  # the same steps with nothing beside the stage
    assert "step noise reduction ms p50/p95" in result.stdout
    assert "step chroma ms p50/p95, stage alone" in result.stdout
    assert figures["latency_ms"]["p95"] >= figures["latency_ms"]["p50"] > 0
    assert figures["live_latency_ms"]["p95"] >= figures["live_latency_ms"]["p50"] > 0
    assert figures["live_frames"] > 0 and figures["live_dropped"] >= 0
    assert figures["width"] == 160 and figures["frames"] == 20
    assert figures["settings"] == {
        "scale": 2.0,
        "gain": 1.0,
        "denoise": 3.0,
        "gate": False,
        "guide": 0.0,
        "ev": 0.0,
        "smooth": 0.0,
        "temporal_denoise": 0.0,
        "black": 0.0,
    }
    assert figures["decoder"] == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="NVDEC may work here: tests/test_cuda.py checks it")
def test_decode_nvdec_without_a_gpu_is_one_clear_error(tmp_path, clip, weights):
    out = tmp_path / "out.mp4"
    result = sagc("enhance", str(clip), "-o", str(out), "--weights", str(weights), "--decode", "nvdec")
    assert_clean_error(result, "--decode")
    assert not out.exists()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program (apt install ffmpeg)")
def test_bench_compares_the_ffmpeg_filter_chain_in_the_same_run(tmp_path, weights):
    clip = make_clip(tmp_path / "clip.mp4", frames=20)
    out = tmp_path / "bench.json"
    args = ("bench", str(clip), "--frames", "20", "--weights", str(weights), "--json", str(out), "--compare-ffmpeg")
    result = sagc(*args)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert figures["ffmpeg_plain_fps"] > 0 and figures["ffmpeg_chain_fps"] > 0
    assert figures["ratio_ffmpeg_chain_to_plain"] == pytest.approx(
        figures["ffmpeg_chain_fps"] / figures["ffmpeg_plain_fps"], abs=2e-3
    )
    assert figures["ffmpeg_version"].startswith("ffmpeg version")
    assert "hqdn3d=4:3:6:4.5,eq=gamma=1.6" in result.stdout and "sagc end-to-end / ffmpeg chain" in result.stdout
    # without ffmpeg on PATH: one line before any measurement
    bare = subprocess.run(
        [sys.executable, "-m", "sagc", *args], capture_output=True, text=True, env={"PATH": str(tmp_path)}, timeout=120
    )
    assert_clean_error(bare, "needs the ffmpeg program")
    assert "bench:" not in bare.stderr


def test_bench_needs_one_input(weights):
    assert_clean_error(sagc("bench", "--weights", str(weights)), "either an input video or --synthetic")
    assert_clean_error(sagc("bench", "--synthetic", "big", "--weights", str(weights)), "WxH@FPS")


def test_smooth_option(tmp_path, clip, weights):
    out = tmp_path / "smooth.mp4"
    result = sagc("enhance", str(clip), "-o", str(out), "--smooth", "0.8", "--weights", str(weights), "-q")
    assert result.returncode == 0, result.stderr
    assert video_frames(out) == 12
    assert_clean_error(sagc("enhance", str(clip), "--smooth", "1.5", "--weights", str(weights)), "--smooth")


def test_synthetic_bench_source_is_dark_camera_like_footage():
    from sagc.models import load_enhancer
    from sagc.stream.apps.bench import synthetic_spec
    from sagc.stream.media.frame import Frame
    from sagc.stream.media.sources import VideoSource

    with VideoSource(synthetic_spec("160x96@30")) as source:
        frame = next(item for item in source if isinstance(item, Frame))
        assert source.info.pix_fmt == "yuv420p" and source.info.width == 160
    x = torch.from_numpy(frame.rgb).permute(2, 0, 1)[None].float() / 255
    assert 0.05 < float(x.mean()) < 0.2
    enhancer = load_enhancer("default")
    assert float(enhancer.gate(enhancer.downscale(x))) == 1.0  # the gate lets it through: full work


def test_a_reader_that_goes_away_ends_the_output_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "sagc", "weights", "default"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    proc.stdout.close()  # gone before the first line is written (importing torch takes longer)
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert "error" not in stderr and "Traceback" not in stderr, stderr

"""Video files through source → enhancer → sink: timing, audio, size, depth, rotation, colour."""

from __future__ import annotations

import logging
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from av.codec.hwaccel import hwdevices_available

from sagc.core.errors import SagcError
from sagc.models import load_enhancer
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.media.frame import Frame
from sagc.stream.media.sinks import EncoderSettings
from sagc.stream.media.sources import Decoding, VideoSource
from sagc.stream.run.jobs import Job
from sagc.stream.run.transcode import run_video_job

from .conftest import SUBTITLE_EVENT, ffmpeg_rgb, ffprobe, make_clip, needs_ffmpeg, scene


@pytest.fixture(scope="module")
def stage(weights):
    return CpuStage(load_enhancer(weights))


@pytest.fixture(scope="module")
def identity(identity_weights):
    return CpuStage(load_enhancer(identity_weights))


def _frame_pts(path) -> list[tuple[int, Fraction]]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return sorted(float(f.pts * f.time_base) for f in c.decode(stream))


def _packets(path, kind: str) -> tuple[int, float]:
    with av.open(str(path)) as c:
        stream = [s for s in c.streams if s.type == kind][0]
        packets = [p for p in c.demux(stream) if p.dts is not None]
        end = max(float((p.pts + p.duration) * p.time_base) for p in packets)
        return len(packets), end


def _enhance(src, dst, stage, **kwargs):
    return run_video_job(Job("video", str(src), dst), stage, **kwargs)


def test_cfr_frames_pts_and_audio_preserved(tmp_path, stage):
    src = make_clip(tmp_path / "in.mp4", frames=30, rate=30, audio=True)
    result = _enhance(src, tmp_path / "out.mp4", stage)
    assert result.frames == 30
    assert _frame_pts(tmp_path / "out.mp4") == _frame_pts(src)
    assert _packets(tmp_path / "out.mp4", "audio") == _packets(src, "audio")
    assert not list(tmp_path.glob("*.partial.mp4"))


def test_enhanced_frames_are_brighter(tmp_path, stage):
    src = make_clip(tmp_path / "in.mp4", brightness=0.3)
    _enhance(src, tmp_path / "out.mp4", stage)
    means = []
    for path in (src, tmp_path / "out.mp4"):
        with VideoSource(str(path)) as s:
            means.append(np.mean([f.rgb.mean() for f in s if isinstance(f, Frame)]))
    assert means[1] > means[0] + 10


def test_vfr_timestamps_preserved(tmp_path, stage):
    pts = [0, 1, 2, 3, 5, 8, 9, 10, 14, 20, 21, 22]
    src = make_clip(tmp_path / "in.mkv", pts=pts, rate=24, time_base=Fraction(1, 24))
    _enhance(src, tmp_path / "out.mkv", stage)
    expected = [p / 24 for p in pts]
    got = _frame_pts(tmp_path / "out.mkv")
    assert got == pytest.approx(expected, abs=1e-3)


@needs_ffmpeg
def test_vfr_matches_ffprobe(tmp_path, stage):
    pts = [0, 2, 3, 7, 8, 9, 15]
    src = make_clip(tmp_path / "in.mp4", pts=pts, rate=30, time_base=Fraction(1, 30))
    _enhance(src, tmp_path / "out.mp4", stage)
    entries = ("-select_streams", "v", "-show_entries", "frame=pts_time")
    assert ffprobe(tmp_path / "out.mp4", *entries) == ffprobe(src, *entries)


@needs_ffmpeg
def test_odd_size_kept(tmp_path, stage, caplog):
    src = make_clip(tmp_path / "in.mkv", size=(641, 359), frames=5, codec="ffv1")
    with caplog.at_level(logging.WARNING):
        _enhance(src, tmp_path / "out.mp4", stage)
    info = ffprobe(tmp_path / "out.mp4", "-show_entries", "stream=width,height,pix_fmt")
    assert info == ["641,359,yuv444p"]
    assert ffmpeg_rgb(tmp_path / "out.mp4", 641, 359).shape == (5, 359, 641, 3)
    assert "odd frame size" in caplog.text


@needs_ffmpeg
def test_10bit_decodes_like_ffmpeg_and_stays_10bit(tmp_path, identity):
    src = make_clip(tmp_path / "in.mkv", pix_fmt="yuv420p10le", frames=6)
    with VideoSource(str(src)) as source:
        assert source.info.bit_depth == 10
        ours = np.stack([f.rgb for f in source if isinstance(f, Frame)])
    golden = ffmpeg_rgb(src, 160, 96, "rgb48le")
    assert ours.dtype == np.uint16
    # Same picture as FFmpeg's own decode, up to chroma-interpolation differences at edges.
    assert np.abs(ours.astype(float) - golden.astype(float)).mean() < 2 * 257
    # Not garbled: the picture is the 8-bit scene scaled to 16 bits (x264 is lossy).
    assert np.abs(ours[0] / 257.0 - scene(0, 160, 96)).mean() < 4
    _enhance(src, tmp_path / "out.mkv", identity, settings=EncoderSettings(crf=0))
    assert ffprobe(tmp_path / "out.mkv", "-show_entries", "stream=pix_fmt") == ["yuv420p10le"]
    out = ffmpeg_rgb(tmp_path / "out.mkv", 160, 96, "rgb48le")
    assert np.abs(out.astype(float) - golden.astype(float)).mean() < 2 * 257


@needs_ffmpeg
def test_rotation_kept(tmp_path, stage):
    src = make_clip(tmp_path / "in.mp4", rotation=90)
    assert ffprobe(src, "-show_entries", "stream_side_data=rotation") == ["90"]
    _enhance(src, tmp_path / "out.mp4", stage)
    out = tmp_path / "out.mp4"
    assert ffprobe(out, "-show_entries", "stream_side_data=rotation") == ["90"]
    assert ffprobe(out, "-select_streams", "v", "-show_entries", "stream=width,height")[0].startswith("160,96")


@needs_ffmpeg
@pytest.mark.parametrize(
    "pix_fmt,tags",
    [
        ("yuv420p", {}),
        ("yuv420p", {"colorspace": 1, "color_range": 1, "color_primaries": 1, "color_trc": 1}),
        ("yuvj420p", {"color_range": 2}),
    ],
)
def test_colour_matrix_and_range_round_trip(tmp_path, identity, pix_fmt, tags):
    """With γ = 1 the output must look like the input to an independent decoder."""
    src = tmp_path / "in.mp4"
    with av.open(str(src), "w") as out:
        stream = out.add_stream("libx264", rate=24, options={"crf": "0"})
        stream.width, stream.height, stream.pix_fmt = 160, 96, pix_fmt
        for key, value in tags.items():
            setattr(stream.codec_context, key, value)
        matrix = "itu709" if tags.get("colorspace") == 1 else "itu601"
        rng = 2 if pix_fmt.startswith("yuvj") else 1
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(scene(i, 160, 96), format="rgb24")
            frame = frame.reformat(format=pix_fmt, dst_colorspace=matrix, dst_color_range=rng)
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    _enhance(src, tmp_path / "out.mp4", identity, settings=EncoderSettings(crf=0))
    keys = "stream=color_space,color_range"
    assert ffprobe(tmp_path / "out.mp4", "-show_entries", keys) == ffprobe(src, "-show_entries", keys)
    a = ffmpeg_rgb(src, 160, 96).astype(int)
    b = ffmpeg_rgb(tmp_path / "out.mp4", 160, 96).astype(int)
    assert np.abs(a - b).mean() < 1.5


def test_subtitles_copied(tmp_path, stage):
    src = make_clip(tmp_path / "in.mkv", subtitles=True, audio=True)
    _enhance(src, tmp_path / "out.mkv", stage)
    with av.open(str(tmp_path / "out.mkv")) as c:
        kinds = sorted(s.type for s in c.streams)
        text = [p for p in c.demux(c.streams.subtitles[0]) if p.size]
    assert kinds == ["audio", "subtitle", "video"]
    assert bytes(text[0]) == SUBTITLE_EVENT


def test_webm_vp9_output_drops_aac_with_warning(tmp_path, stage, caplog):
    src = make_clip(tmp_path / "in.mp4", audio=True, frames=6)
    with caplog.at_level(logging.WARNING):
        _enhance(src, tmp_path / "out.webm", stage)
    with av.open(str(tmp_path / "out.webm")) as c:
        assert [s.codec_context.name for s in c.streams] == ["vp9"]
        assert sum(1 for _ in c.decode(video=0)) == 6
    assert "dropping audio stream" in caplog.text


def test_compare_is_double_width(tmp_path, stage):
    src = make_clip(tmp_path / "in.mp4", frames=8)
    result = _enhance(src, tmp_path / "out.mp4", stage, compare=True)
    with av.open(str(result.compare)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape == (96, 320, 3)
    assert frames[0][:, 160:].mean() > frames[0][:, :160].mean()


def test_truncated_input_reports_lost_frames_and_keeps_readable_part(tmp_path, stage):
    src = tmp_path / "full.mp4"
    with av.open(str(src), "w", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for i in range(48):
            frame = av.VideoFrame.from_ndarray(scene(i, 160, 96), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SagcError, match=r"truncated or corrupt: decoded \d+ frames, \d+ lost"):
        _enhance(cut, tmp_path / "out.mp4", stage)
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert 0 < sum(1 for _ in c.decode(video=0)) < 48


def test_stop_event_leaves_playable_partial(tmp_path, stage):
    import threading

    src = make_clip(tmp_path / "in.mp4", frames=40)
    stop = threading.Event()
    seen = []

    def on_frame(_frame):
        seen.append(1)
        if len(seen) == 10:
            stop.set()

    result = _enhance(src, tmp_path / "out.mp4", stage, stop=stop, on_frame=on_frame)
    assert result.interrupted and result.output.name.startswith("out.") and result.output.name.endswith(".partial.mp4")
    # frames already decoded when the stop came are still written (threaded pipeline)
    assert 10 <= result.frames < 40
    with av.open(str(result.output)) as c:
        assert sum(1 for _ in c.decode(video=0)) == result.frames
    assert not (tmp_path / "out.mp4").exists()


def test_lavfi_source():
    with VideoSource("lavfi:testsrc2=size=64x48:rate=10:duration=1") as source:
        frames = [f for f in source if isinstance(f, Frame)]
    assert len(frames) == 10 and frames[0].rgb.shape == (48, 64, 3)


def _decoded(path, decoding) -> tuple[list[np.ndarray], bool, str]:
    with VideoSource(str(path), decoding=decoding) as source:
        return [f.rgb for f in source if isinstance(f, Frame)], source.hardware, source.info.pix_fmt


@pytest.mark.skipif(torch.cuda.is_available(), reason="NVDEC may work here: tests/test_cuda.py checks it")
def test_hardware_decoding_falls_back_to_the_cpu_decoder_where_there_is_no_device(tmp_path, caplog):
    clip = make_clip(tmp_path / "c.mp4", frames=6)
    want, _, _ = _decoded(clip, Decoding())
    with caplog.at_level(logging.INFO, logger="sagc.stream.media.sources"):
        got, hardware, pix_fmt = _decoded(clip, Decoding("cuda"))
    assert not hardware and pix_fmt == "yuv420p"
    assert "decoding on the CPU" in caplog.text
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    with pytest.raises(SagcError, match="use --decode cpu"):
        VideoSource(str(clip), decoding=Decoding("cuda", required=True))


def test_decoding_choice():
    assert Decoding.choose("cpu", "cuda") == Decoding()
    assert Decoding.choose("auto", "cpu") == Decoding()
    if "cuda" in hwdevices_available():  # PyAV's own FFmpeg build decides what it offers
        assert Decoding.choose("auto", "cuda", 1) == Decoding("cuda", 1)
        assert Decoding.choose("nvdec", "cpu") == Decoding("cuda", required=True)
    with pytest.raises(SagcError, match="--decode must be one of"):
        Decoding.choose("gpu", "cuda")

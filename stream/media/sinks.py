"""Video sinks: encode RGB frames with PyAV and copy the source's other streams as packets."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import numpy as np

from sagc.core.errors import SagcError
from sagc.core.timing import StepTimer, step
from sagc.ops.colour import effective_range, plain_pix_fmt, swscale_colorspace
from sagc.stream.media.frame import Frame, YuvPlanes
from sagc.stream.media.sources import VideoInfo

__all__ = ["VIDEO_EXTENSIONS", "PRESETS", "EncoderSettings", "EncoderSink", "codec_options", "container_for"]

log = logging.getLogger(__name__)

# Output extension → (muxer, default video codec).
VIDEO_EXTENSIONS: dict[str, tuple[str, str]] = {
    ".mp4": ("mp4", "libx264"),
    ".m4v": ("mp4", "libx264"),
    ".mov": ("mov", "libx264"),
    ".mkv": ("matroska", "libx264"),
    ".webm": ("webm", "libvpx-vp9"),
}
PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
_DEFAULT_CRF = {"libx264": 18, "libx265": 20, "libvpx-vp9": 31, "libaom-av1": 30}
# each encoder's own CRF scale (8-bit x264/x265 stop at 51; VP9 and AV1 at 63)
_CRF_RANGE = {"libx264": (0, 51), "libx265": (0, 51), "libvpx-vp9": (0, 63), "libaom-av1": (0, 63)}


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    """User-facing encoder choices; ``None`` means "pick a sensible default for the codec"."""

    codec: str | None = None
    crf: int | None = None
    preset: str = "veryfast"
    pix_fmt: str | None = None

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise SagcError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise SagcError(f"--crf must be between 0 and 63, got {self.crf}")


def container_for(path: Path) -> tuple[str, str]:
    """(muxer, default codec) for an output path, or a clear error for unknown extensions."""
    ext = path.suffix.lower()
    if ext not in VIDEO_EXTENSIONS:
        known = ", ".join(VIDEO_EXTENSIONS)
        raise SagcError(f"unknown video output extension {ext or '(none)'!r}; use one of {known}")
    return VIDEO_EXTENSIONS[ext]


def _encoder(name: str) -> av.Codec:
    try:
        codec = av.Codec(name, "w")
    except (av.error.FFmpegError, ValueError) as exc:
        raise SagcError(
            f"unknown or unavailable encoder {name!r}; try libx264, libx265, libvpx-vp9 or "
            "libaom-av1 (see `python -m av --codecs`)"
        ) from exc
    if codec.type != "video":
        raise SagcError(f"{name!r} is a {codec.type} codec; --codec needs a video encoder")
    return codec


def _with_full_chroma(pix_fmt: str) -> str:
    for subsampled in ("420", "422", "411", "440"):
        if subsampled in pix_fmt:
            return pix_fmt.replace(subsampled, "444")
    return pix_fmt


def choose_pix_fmt(codec: av.Codec, info: VideoInfo, requested: str | None, size: tuple[int, int]) -> str:
    """The encoder pixel format: the requested one, else the source's, else 8/10-bit 4:2:0."""
    supported = [f.name for f in (codec.video_formats or ())]
    if requested is not None:
        if supported and requested not in supported:
            raise SagcError(
                f"{codec.name} cannot encode pixel format {requested!r}; choose one of {', '.join(supported)}"
            )
        return requested
    wanted = plain_pix_fmt(info.pix_fmt)
    if supported and wanted not in supported:
        deep = info.bit_depth > 8 and "yuv420p10le" in supported
        wanted = "yuv420p10le" if deep else "yuv420p"
    width, height = size
    if codec.name in ("libx264", "libx265") and (width % 2 or height % 2):
        full = _with_full_chroma(wanted)
        if full != wanted and (not supported or full in supported):
            log.warning("odd frame size %dx%d: encoding %s instead of %s", width, height, full, wanted)
            wanted = full
    return wanted


def codec_options(codec: str, settings: EncoderSettings) -> dict[str, str]:
    """The encoder options (FFmpeg's names) ``settings`` mean for ``codec``."""
    low, high = _CRF_RANGE.get(codec, (0, 63))
    if settings.crf is not None and not low <= settings.crf <= high:
        raise SagcError(f"--crf for {codec} must be between {low} and {high}, got {settings.crf}")
    crf = settings.crf if settings.crf is not None else _DEFAULT_CRF.get(codec)
    options: dict[str, str] = {}
    if codec in ("libx264", "libx265"):
        options["preset"] = settings.preset
        if crf is not None:
            options["crf"] = str(crf)
    elif codec == "libvpx-vp9":
        speed = PRESETS.index(settings.preset)  # 0 (ultrafast) … 8 (veryslow)
        options.update({"b": "0", "row-mt": "1", "cpu-used": str(max(0, 8 - speed))})
        options["deadline"] = "realtime" if speed <= 2 else "good"
        if crf is not None:
            options["crf"] = str(crf)
    elif crf is not None:
        options["crf"] = str(crf)
    return options


class EncoderSink:
    """Encode frames into ``path`` (format from its extension) and copy passthrough packets.

    Keeps each frame's pts and the source's time base (so variable frame rate survives), its
    frame rate, rotation and colour tags. ``close()`` flushes the encoder and finalises the
    container, so whatever was written up to then plays.
    """

    def __init__(
        self,
        path: str | Path,
        info: VideoInfo,
        *,
        settings: EncoderSettings = EncoderSettings(),
        passthrough: Sequence[av.stream.Stream] = (),
        width: int | None = None,
        container_path: str | Path | None = None,
    ) -> None:
        """``container_path`` (e.g. a temporary name) is written; ``path`` picks the format."""
        self.path = Path(path)
        self.dropped_packets = 0  # audio/subtitle packets the muxer refused as damaged (or out of order)
        muxer, codec_name = container_for(self.path)
        codec = _encoder(settings.codec or codec_name)
        self.width = width or info.width
        self.height = info.height
        self.pix_fmt = choose_pix_fmt(codec, info, settings.pix_fmt, (self.width, self.height))
        self.frames_written = 0
        self.timer: StepTimer | None = None  # set to time the conversion from RGB (sagc bench)
        self._matrix = swscale_colorspace(info.colorspace)
        self._range = effective_range(info.color_range, info.pix_fmt)
        target = str(container_path or self.path)
        try:
            self._container = av.open(target, mode="w", format=muxer)
        except (av.error.FFmpegError, OSError) as exc:
            raise SagcError(f"cannot write {target}: {exc}") from exc
        try:
            self._stream = self._add_video(codec, info, settings)
            self._copies = self._add_passthrough(passthrough)
        except BaseException:
            self._container.close()
            raise
        self._closed = False

    def _add_video(self, codec: av.Codec, info: VideoInfo, settings: EncoderSettings) -> av.VideoStream:
        options = codec_options(codec.name, settings)
        stream = self._container.add_stream(codec.name, rate=info.rate, options=options)
        stream.width = self.width
        stream.height = self.height
        stream.pix_fmt = self.pix_fmt
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        stream.codec_context.framerate = info.rate
        stream.thread_type = "AUTO"
        ctx = stream.codec_context
        ctx.color_range = self._range if info.color_range else 0
        ctx.colorspace = info.colorspace
        ctx.color_primaries = info.color_primaries
        ctx.color_trc = info.color_trc
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        return stream

    def _add_passthrough(self, streams: Sequence[av.stream.Stream]) -> dict[int, av.stream.Stream]:
        copies: dict[int, av.stream.Stream] = {}
        for source_stream in streams:
            try:
                copies[source_stream.index] = self._container.add_stream_from_template(source_stream)
            except (ValueError, av.error.FFmpegError) as exc:
                log.warning(
                    "dropping %s stream #%d (%s): %s cannot carry it (%s)",
                    source_stream.type,
                    source_stream.index,
                    source_stream.codec_context.name if source_stream.codec_context else "?",
                    self.path.suffix,
                    exc,
                )
        return copies

    def write_frame(self, frame: Frame) -> None:
        """Encode one frame at its own pts."""
        if frame.width != self.width or frame.height != self.height:
            raise ValueError(f"frame is {frame.width}x{frame.height}, encoder expects {self.width}x{self.height}")
        planes = frame.planes
        if planes is not None and self._takes(planes):  # already in the encoder's layout and colour
            picture = av.VideoFrame.from_ndarray(planes.i420, format="yuv420p")
        else:
            fmt = "rgb48le" if frame.rgb.dtype == np.uint16 else "rgb24"
            with step(self.timer, "convert from RGB"):
                picture = av.VideoFrame.from_ndarray(frame.rgb, format=fmt)
                picture = picture.reformat(
                    format=self.pix_fmt, dst_colorspace=self._matrix, dst_color_range=self._range
                )
        picture.pts = frame.pts
        picture.time_base = frame.time_base
        for packet in self._stream.encode(picture):
            self._container.mux(packet)
        self.frames_written += 1

    def _takes(self, planes: YuvPlanes) -> bool:
        """True when ``planes`` can be encoded as they are: 4:2:0 8-bit out, same matrix and range."""
        return self.pix_fmt == "yuv420p" and planes.matrix == self._matrix and planes.color_range == self._range

    def write_packet(self, packet: av.Packet) -> None:
        """Copy one demuxed audio/subtitle packet, if its stream is carried."""
        origin = packet.stream
        target = self._copies.get(origin.index)
        if target is None:
            return
        packet.stream = target
        try:
            self._container.mux(packet)
        except (av.error.InvalidDataError, av.error.ArgumentError) as exc:
            # a damaged packet (a broken stream: corrupt, or timestamps going backwards, which the
            # muxer refuses as an invalid argument): dropped and counted
            self.dropped_packets += 1
            log.debug("%s: dropped a damaged %s packet: %s", self.path, origin.type, exc)
        finally:
            packet.stream = origin  # other sinks look the packet up by its source stream

    def close(self) -> None:
        """Flush the encoder and finalise the container (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()

    def __enter__(self) -> EncoderSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Video frame sources: anything PyAV opens (files, network URLs, lavfi graphs).

A :class:`VideoSource` yields decoded :class:`Frame` objects in presentation order and, beside
them, the audio and subtitle packets of the same container untouched, so a sink can copy them.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
from av.codec.hwaccel import HWAccel, hwdevices_available

from sagc.core.errors import SagcError
from sagc.core.timing import StepTimer, step
from sagc.ops.colour import effective_range, swscale_colorspace
from sagc.stream.media.frame import DEFAULT_MAX_PIXELS, Frame, YuvPlanes, check_pixels

__all__ = ["DECODERS", "LAVFI_PREFIX", "Decoding", "VideoInfo", "VideoSource", "is_url", "is_lavfi"]

log = logging.getLogger(__name__)

# --decode (Decoding.choose): "cpu", the default (NVDEC measured slower: docs/speed.md); "nvdec", an
# error where there is none; "auto": NVDEC for a CUDA model where PyAV's FFmpeg offers it, else the CPU
DECODERS = ("auto", "cpu", "nvdec")

LAVFI_PREFIX = "lavfi:"
_URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
PASSTHROUGH_TYPES = ("audio", "subtitle")
# the pixel layout a hardware decoder downloads into, and the software one it stands for
_PLANAR_FORMATS = ("yuv420p", "yuvj420p")  # decoded layouts a planar source hands on as YuvPlanes
_HW_DOWNLOAD_FORMATS = {"nv12": "yuv420p", "p010le": "yuv420p10le", "p016le": "yuv420p16le", "nv16": "yuv422p"}


def _timeout(spec: str) -> tuple[float, float] | None:
    """PyAV's (open, read) timeouts: network streams only."""
    return (15.0, 15.0) if is_url(spec) else None


def is_url(spec: str) -> bool:
    """True for network inputs PyAV opens by URL."""
    return spec.lower().startswith(_URL_SCHEMES)


def is_lavfi(spec: str) -> bool:
    """True for ``lavfi:GRAPH`` inputs (FFmpeg's filter sources, e.g. ``lavfi:testsrc2``)."""
    return spec.startswith(LAVFI_PREFIX)


@dataclass(frozen=True, slots=True)
class Decoding:
    """Where video is decoded: ``hardware`` is a PyAV hardware device type (``"cuda"``: NVDEC)
    or None for the CPU decoder, ``index`` which such device (None: the default one);
    ``required`` turns an unavailable device into an error instead of a fall-back to the CPU."""

    hardware: str | None = None
    index: int | None = None
    required: bool = False

    @classmethod
    def choose(cls, choice: str, device_type: str, index: int | None = None) -> Decoding:
        """The decoding for a ``--decode`` choice and the model's device (type and index)."""
        if choice not in DECODERS:
            raise SagcError(f"--decode must be one of {', '.join(DECODERS)}, got {choice!r}")
        available = "cuda" in hwdevices_available()
        if choice == "nvdec" and not available:
            raise SagcError("--decode nvdec: this PyAV's FFmpeg has no CUDA support; use --decode cpu")
        if choice == "nvdec" or (choice == "auto" and device_type == "cuda" and available):
            return cls("cuda", index if device_type == "cuda" else None, required=choice == "nvdec")
        return cls()


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What a sink needs to know about the video it re-encodes."""

    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    rate: Fraction
    time_base: Fraction
    color_range: int
    colorspace: int
    color_primaries: int
    color_trc: int
    rotation: int
    codec: str
    expected_frames: int | None


def _open_container(
    spec: str,
    input_format: str | None = None,
    options: dict[str, str] | None = None,
) -> av.container.InputContainer:
    if input_format is not None:  # capture devices (v4l2, avfoundation, dshow)
        try:
            return av.open(spec, format=input_format, options=options or {})
        except av.error.FileNotFoundError as exc:
            raise SagcError(f"camera {spec} not found; check --source (e.g. 0 or /dev/video0)") from exc
        except av.error.FFmpegError as exc:
            raise SagcError(f"cannot open camera {spec} ({input_format}): {exc.strerror}") from exc
    if is_lavfi(spec):
        graph = spec[len(LAVFI_PREFIX) :]
        try:
            return av.open(graph, format="lavfi")
        except av.error.FFmpegError as exc:
            raise SagcError(f"invalid lavfi source {graph!r}: {exc.strerror}") from exc
    if not is_url(spec):
        path = Path(spec)
        if not path.exists():
            raise SagcError(f"input not found: {spec}")
        if path.is_dir():
            raise SagcError(f"{spec} is a directory, not a video file")
    try:
        return av.open(spec, mode="r", timeout=_timeout(spec), metadata_errors="replace")
    except av.error.EOFError as exc:
        raise SagcError(f"{spec} has no video frames (the file ends before the first one)") from exc
    except av.error.InvalidDataError as exc:
        raise SagcError(f"cannot read {spec}: not a media file, or damaged/truncated ({exc.strerror})") from exc
    except av.error.FFmpegError as exc:
        raise SagcError(f"cannot open {spec}: {exc.strerror}") from exc
    except ValueError as exc:  # a header PyAV cannot represent (damaged stream parameters)
        raise SagcError(f"cannot read {spec}: damaged or unsupported header ({exc})") from exc


class VideoSource:
    """Decode the first video stream of ``spec``; also pass its audio/subtitle packets through.

    Frames come out as RGB (uint8, or uint16 when the source has more than 8 bits), converted
    with the matrix and range the stream is tagged with. Corrupt or truncated input is decoded
    as far as it is readable; :attr:`lost_frames` says how much was not.

    ``decoding`` may name a hardware decoder (NVDEC) for files and network streams; frames are
    downloaded and converted as usual. Where the device cannot be opened it falls back to the
    CPU decoder with a log line, or raises when the decoding is ``required``; either way
    :attr:`hardware` says what decodes.
    """

    def __init__(
        self,
        spec: str,
        *,
        decoder_threads: int = 0,
        input_format: str | None = None,
        options: dict[str, str] | None = None,
        decoding: Decoding = Decoding(),
        max_pixels: int = DEFAULT_MAX_PIXELS,
        planar: bool = False,
        limit_flag: str | None = None,
    ) -> None:
        """``input_format``/``options`` open a capture device (e.g. ``v4l2``, ``video_size``);
        a stream whose pictures have more than ``max_pixels`` is refused before decoding (the
        message names ``limit_flag``). ``planar`` yields 8-bit 4:2:0 pictures of even size as
        their planes (:class:`~sagc.stream.media.frame.YuvPlanes`, RGB made only where read)."""
        self.spec, self.planar = spec, planar
        self.max_pixels, self.limit_flag = max_pixels, limit_flag
        self.timer: StepTimer | None = None  # set to time the conversion to RGB (sagc bench)
        self._container = self._open(spec, input_format, options, decoding)
        try:
            self._setup(decoder_threads)
        except BaseException:
            self._container.close()
            raise

    def _open(
        self,
        spec: str,
        input_format: str | None,
        options: dict[str, str] | None,
        decoding: Decoding,
    ) -> av.container.InputContainer:
        device = decoding.hardware
        if device is None or input_format is not None or is_lavfi(spec):
            return _open_container(spec, input_format, options)
        try:
            index = None if decoding.index is None else str(decoding.index)
            hwaccel = HWAccel(device, device=index, allow_software_fallback=True)
            return av.open(spec, mode="r", timeout=_timeout(spec), hwaccel=hwaccel, metadata_errors="replace")
        except (OSError, ValueError, av.error.FFmpegError) as exc:  # no device, driver or permission, or a bad input
            container = _open_container(spec, input_format, options)  # a bad input raises its own error here
            reason = getattr(exc, "strerror", None) or str(exc)
            if decoding.required:
                container.close()
                raise SagcError(f"cannot decode on {device} here ({reason}); use --decode cpu") from exc
            log.info("decoding on the CPU: the %s decoder is not available here (%s)", device, reason)
            return container

    @property
    def hardware(self) -> bool:
        """True when frames are decoded on a hardware device (e.g. NVDEC)."""
        return bool(self._video.codec_context.is_hwaccel)

    def _setup(self, decoder_threads: int) -> None:
        container = self._container
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            if not kinds:
                raise SagcError(f"{self.spec} has no video frames (it holds no streams at all)")
            raise SagcError(f"{self.spec} has no video stream (only {', '.join(kinds)}); pass a video file")
        self._video = container.streams.video[0]
        context = self._video.codec_context
        if context is None:
            raise SagcError(f"cannot decode {self.spec}: its video codec is unknown (damaged or unsupported)")
        check_pixels(context.width, context.height, self.max_pixels, self.spec, flag=self.limit_flag)  # before decoding
        self._video.thread_type = "AUTO"
        self._video.thread_count = decoder_threads
        self.passthrough_streams = [s for s in container.streams if s.type in PASSTHROUGH_TYPES]
        self.decoded = 0
        self.corrupt_packets = 0
        self.discarded_packets = 0
        self.damaged_packets = 0
        self.read_error: str | None = None
        self._first_time: float | None = None
        self._last_time: float | None = None
        self._steps: Counter[float] = Counter()  # time between consecutive frames (s) → how often
        self._other_end: float | None = None
        self._items = self._demux()
        self._pending: deque[Frame | av.Packet] = deque()
        self._peek_first_frame()
        self.info: VideoInfo = self._first_info

    def _peek_first_frame(self) -> None:
        for item in self._items:
            self._pending.append(item)
            if isinstance(item, Frame):
                return
        reason = f" ({self.read_error})" if self.read_error else ""
        raise SagcError(f"{self.spec} has no decodable video frames{reason}")

    def _describe(self, frame: av.VideoFrame) -> VideoInfo:
        stream = self._video
        fmt = frame.format
        depth = max(c.bits for c in fmt.components)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(30)
        pix_fmt = fmt.name
        if self.hardware:  # the download layout (nv12) stands for the stream's own (yuv420p)
            pix_fmt = _HW_DOWNLOAD_FORMATS.get(pix_fmt, pix_fmt)
        return VideoInfo(
            width=frame.width,
            height=frame.height,
            pix_fmt=pix_fmt,
            bit_depth=depth,
            rate=Fraction(rate),
            time_base=Fraction(stream.time_base or frame.time_base or Fraction(1, 90000)),
            color_range=int(frame.color_range),
            colorspace=int(frame.colorspace),
            color_primaries=int(frame.color_primaries),
            color_trc=int(frame.color_trc),
            rotation=int(frame.rotation),
            codec=stream.codec_context.name,
            expected_frames=int(stream.frames) if stream.frames else None,
        )

    def _convert(self, frame: av.VideoFrame) -> Frame:
        check_pixels(frame.width, frame.height, self.max_pixels, self.spec, flag=self.limit_flag)  # mid-stream too
        if self.decoded == 0:
            self._first_info = self._describe(frame)
            info = self._first_info
            self._rgb_format = "rgb48le" if info.bit_depth > 8 else "rgb24"
            self._matrix = swscale_colorspace(info.colorspace)
            self._range = effective_range(info.color_range, info.pix_fmt)
            downloaded = frame.format.name
            self._hw_layout = _HW_DOWNLOAD_FORMATS.get(downloaded) if self.hardware else None
        if self._hw_layout is not None:  # nv12 → yuv420p is a lossless copy; from there the RGB
            frame = frame.reformat(format=self._hw_layout)  # is the CPU decoder's, bit for bit
        pts = frame.pts if frame.pts is not None else frame.dts
        if self.planar and frame.format.name in _PLANAR_FORMATS and not (frame.width % 2 or frame.height % 2):
            planes = YuvPlanes(frame.to_ndarray(), frame.width, frame.height, self._matrix, self._range)
            out = Frame(None, pts, self._first_info.time_base, self.decoded, planes=planes)
        else:
            with step(self.timer, "convert to RGB"):
                rgb = frame.to_ndarray(
                    format=self._rgb_format, src_colorspace=self._matrix, src_color_range=self._range
                )
            out = Frame(rgb, pts, self._first_info.time_base, self.decoded)
        if out.time is not None:
            if self._first_time is None:
                self._first_time = out.time
            step_seconds = round(out.time - self._last_time, 6) if self._last_time is not None else 0.0
            if step_seconds > 0:  # (a repeated or out-of-order timestamp is no step)
                self._steps[step_seconds] += 1
            self._last_time = out.time
        self.decoded += 1
        return out

    def _decode(self, packet: av.Packet | None) -> Iterator[Frame]:
        discard = packet is not None and packet.is_discard
        if discard:  # before an edit list's start: decoded for its references, never shown
            self.discarded_packets += 1
        elif packet is not None and packet.is_corrupt:
            self.damaged_packets += 1
        try:
            frames = self._video.decode(packet)
        except av.error.InvalidDataError as exc:
            if not discard:
                self.corrupt_packets += 1
            log.debug("skipping undecodable packet: %s", exc)
            return
        for frame in frames:
            yield self._convert(frame)

    def _demux(self) -> Iterator[Frame | av.Packet]:
        streams = [self._video, *self.passthrough_streams]
        try:
            for packet in self._container.demux(streams):
                if packet.stream.index == self._video.index:
                    yield from self._decode(packet)
                elif packet.dts is not None:
                    self._note_end(packet)
                    yield packet
        except av.error.FFmpegError as exc:
            # Truncated or damaged container: keep what was read, flush the decoder below.
            self.read_error = exc.strerror or str(exc)
            log.debug("stopped reading %s: %s", self.spec, exc)
            yield from self._decode(None)

    def __iter__(self) -> Iterator[Frame | av.Packet]:
        while self._pending:
            yield self._pending.popleft()
        yield from self._items

    def _note_end(self, packet: av.Packet) -> None:
        """Remember how far the other streams (audio, subtitles) reached, in seconds."""
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is not None and packet.time_base:
            end = float((stamp + (packet.duration or 0)) * packet.time_base)
            self._other_end = end if self._other_end is None else max(self._other_end, end)

    @property
    def lost_frames(self) -> int:
        """Frames the container meant to show that the decoder could not produce (0 when all arrived).

        Packets flagged *discard* (before an MP4 edit list's start) never count. The largest of:
        the header's frame count less the discarded packets (when there is a count), how far the
        decoded timestamps got against the declared duration (when there is none: variable frame
        rate is fine), and, after reported damage, the timestamps' holes plus undecodable packets.
        """
        expected = self.info.expected_frames
        if expected:
            missing = max(0, expected - self.discarded_packets - self.decoded)
        else:
            missing = self._missing_at_end()
        if self.corrupt_packets or self.damaged_packets or self.read_error:
            missing = max(missing, self.corrupt_packets, self._holes())
        return missing

    def _missing_at_end(self) -> int:
        """Frames missing after the last one decoded: the video stream's declared duration against
        how far its frames got; without one, the container's duration against how far any stream
        got (a file whose subtitles or audio outlast its video is complete, a cut file is not)."""
        if self._last_time is None:
            return 0
        frame_seconds = 1.0 / float(self.info.rate)
        video_end = self._last_time + frame_seconds
        stream = self._video
        if stream.duration and stream.time_base:
            first = self._first_time or 0.0
            start = first if stream.start_time is None else float(stream.start_time * stream.time_base)
            gap = float(stream.duration * stream.time_base) - (video_end - start)
        elif self._container.duration:
            container_start = self._container.start_time
            start = container_start / 1_000_000 if container_start is not None else (self._first_time or 0.0)
            reached = max(video_end, self._other_end or video_end)
            gap = self._container.duration / 1_000_000 - (reached - start)
        else:
            return 0
        return round(gap / frame_seconds) if gap > 1.5 * frame_seconds else 0

    def _holes(self) -> int:
        """Frames missing inside the decoded timeline: gaps of more than 1.5 typical (median) frame
        steps. Steps are counted by length, so a long live stream keeps a few numbers, not a list."""
        total = sum(self._steps.values())
        if total < 2:
            return 0
        seen, typical = 0, 0.0
        for length in sorted(self._steps):  # the median step, weighted by how often each occurs
            seen += self._steps[length]
            if 2 * seen > total:
                typical = length
                break
        return sum(n * (round(length / typical) - 1) for length, n in self._steps.items() if length > 1.5 * typical)

    def close(self) -> None:
        """Release the demuxer and decoder."""
        self._items.close()
        self._container.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Still images: read PNG/JPEG/BMP/TIFF into frames and write them back in the same layout.

8- and 16-bit depth, grey, RGB and RGBA are kept; EXIF orientation is applied on read so the
written image is upright without needing the tag.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from sagc.core.atomic import atomic_write_bytes
from sagc.core.errors import SagcError
from sagc.stream.media.frame import DEFAULT_MAX_PIXELS, Frame, check_pixels

__all__ = [
    "IMAGE_EXTENSIONS",
    "require_images",
    "ImageSink",
    "ImageSource",
    "is_image_path",
    "list_images",
    "read_image",
    "write_image",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_EXIF_ORIENTATION = 0x0112
_JPEG_QUALITY = 95


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True when the extension is one of :data:`IMAGE_EXTENSIONS`."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_image_path(p))


def require_images(folder: str | os.PathLike[str]) -> list[Path]:
    """:func:`list_images`, with a one-line :class:`SagcError` for a missing or empty folder."""
    if not Path(folder).is_dir():
        raise SagcError(f"image folder {folder} is not a directory (or does not exist)")
    found = list_images(folder)
    if not found:
        raise SagcError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
    return found


def _exif_orientation(path: Path) -> int:
    try:
        with Image.open(path) as image:
            return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except (UnidentifiedImageError, OSError, ValueError):
        return 1


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright according to an EXIF orientation value (1–8)."""
    transforms = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: np.rot90(a, k=2).swapaxes(0, 1),
        8: lambda a: np.rot90(a, k=1),
    }
    return np.ascontiguousarray(transforms.get(orientation, transforms[1])(pixels))


def _header(path: Path) -> tuple[tuple[int, int] | None, str]:
    """(width, height) and PIL's mode (``LA`` grey with alpha, ``CMYK``, ...) from the file's
    header alone; (None, "") where PIL cannot tell."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            with Image.open(path) as image:
                return image.size, image.mode
    except Image.DecompressionBombError:  # PIL's own guard: larger than any limit of ours
        return (2**31 - 1, 1), ""
    except (UnidentifiedImageError, OSError, ValueError):
        return None, ""


_GREY_ALPHA_MODES = ("LA", "La", "PA")  # grey (or palette of greys) with alpha: OpenCV hands them on as BGRA
_INK_MODES = ("CMYK", "YCbCr")  # four channels that are colour, not colour and alpha


def read_image(
    path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS, limit_flag: str | None = None
) -> Frame:
    """Decode an image file into an upright RGB :class:`Frame` (alpha and layout recorded).

    A picture of more than ``max_pixels`` is refused from its header, before it is decoded."""
    path = Path(path)
    if not path.is_file():
        raise SagcError(f"input not found: {path}")
    size, mode = _header(path)
    if size is not None:
        check_pixels(*size, max_pixels, str(path), flag=limit_flag)
    data = np.fromfile(path, dtype=np.uint8)
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH if mode in _INK_MODES else cv2.IMREAD_UNCHANGED
    pixels = cv2.imdecode(data, flags) if data.size else None
    if pixels is None:
        raise SagcError(f"{path} is not a readable image (corrupt or unsupported format)")
    check_pixels(pixels.shape[1], pixels.shape[0], max_pixels, str(path), flag=limit_flag)
    if pixels.dtype not in (np.uint8, np.uint16):
        raise SagcError(f"{path}: {pixels.dtype} images are not supported; use 8- or 16-bit")
    pixels = apply_orientation(pixels, _exif_orientation(path))
    alpha = None
    if pixels.ndim == 2:
        channels, rgb = 1, np.repeat(pixels[:, :, None], 3, axis=2)
    elif pixels.shape[2] == 4 and mode in _GREY_ALPHA_MODES:  # grey stays grey: one exponent for all three
        grey = np.repeat(pixels[:, :, :1], 3, axis=2)
        channels, rgb, alpha = 2, grey, pixels[:, :, 3].copy()
    elif pixels.shape[2] == 4:
        channels, rgb, alpha = 4, cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB), pixels[:, :, 3].copy()
    elif pixels.shape[2] == 3:
        channels, rgb = 3, cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    else:
        raise SagcError(f"{path}: images with {pixels.shape[2]} channels are not supported")
    return Frame(np.ascontiguousarray(rgb), alpha=alpha, channels=channels)


def _to_layout(frame: Frame) -> np.ndarray:
    if frame.channels in (1, 2):  # grey (with alpha: written as equal channels beside it)
        grey = np.rint(frame.rgb.astype(np.float32).mean(axis=2)).astype(frame.rgb.dtype)
        if frame.channels == 1:
            return grey
        alpha = frame.alpha if frame.alpha is not None else np.full_like(grey, np.iinfo(grey.dtype).max)
        return np.dstack([grey, alpha])
    bgr = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
    if frame.alpha is not None:
        return np.dstack([bgr, frame.alpha])
    return bgr


def write_image(path: str | os.PathLike[str], frame: Frame, *, overwrite: bool = True) -> Path:
    """Encode ``frame`` by ``path``'s extension and move it into place atomically (over an
    existing file only with ``overwrite``)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        known = ", ".join(IMAGE_EXTENSIONS)
        raise SagcError(f"unknown image output extension {ext or '(none)'!r}; use one of {known}")
    pixels = _to_layout(frame)
    if pixels.ndim == 3 and pixels.shape[2] == 2:  # grey and alpha: PNG keeps the layout, others get equal channels
        if ext == ".png" and pixels.dtype == np.uint8:
            buffer = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(pixels), mode="LA").save(buffer, format="PNG")
            return _publish(path, buffer.getvalue(), overwrite=overwrite)
        grey, alpha = pixels[:, :, 0], pixels[:, :, 1]
        pixels = np.dstack([grey, grey, grey, alpha])
    params: list[int] = []
    if ext in (".jpg", ".jpeg", ".bmp"):
        if pixels.ndim == 3 and pixels.shape[2] == 4:
            log.warning("%s cannot hold alpha; writing %s without it", ext, path.name)
            pixels = pixels[:, :, :3]
        if pixels.dtype == np.uint16:
            log.warning("%s cannot hold 16-bit pixels; writing %s as 8-bit", ext, path.name)
            pixels = np.rint(pixels / 257.0).astype(np.uint8)
        if ext != ".bmp":
            params = [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]
    ok, encoded = cv2.imencode(ext, np.ascontiguousarray(pixels), params)
    if not ok:
        raise SagcError(f"could not encode {path.name} as {ext}")
    return _publish(path, encoded.tobytes(), overwrite=overwrite)


def _publish(path: Path, data: bytes, *, overwrite: bool) -> Path:
    try:
        return atomic_write_bytes(path, data, overwrite=overwrite)
    except OSError as exc:
        raise SagcError(f"cannot write {path}: {exc.strerror or exc}") from exc


class ImageSource:
    """Frames from image files, in order; ``frame.index`` is the file's position in ``paths``.

    An unreadable file is skipped and its one-line reason kept in :attr:`failures`.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        limit_flag: str | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.max_pixels, self.limit_flag = max_pixels, limit_flag
        self.failures: list[str] = []

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            try:
                frame = read_image(path, max_pixels=self.max_pixels, limit_flag=self.limit_flag)
            except SagcError as exc:
                self.failures.append(str(exc))
                continue
            frame.index = index
            yield frame

    def close(self) -> None:
        """Nothing stays open between images; here for the source protocol."""

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ImageSink:
    """Writes frame ``i`` to ``outputs[i]`` (atomically, creating folders as needed; an existing
    file is replaced only with ``overwrite``)."""

    def __init__(self, outputs: Sequence[str | os.PathLike[str]], *, overwrite: bool = False) -> None:
        self.outputs = [Path(p) for p in outputs]
        self.overwrite = overwrite
        self.written: list[Path] = []

    def write_frame(self, frame: Frame) -> None:
        target = self.outputs[frame.index]
        target.parent.mkdir(parents=True, exist_ok=True)
        self.written.append(write_image(target, frame, overwrite=self.overwrite))

    def write_packet(self, packet: object) -> None:
        raise TypeError("image sinks take frames only")

"""Run methods over a dataset and collect per-item metrics, speed and thumbnails.

Images (paired or not) are loaded one at a time; a video is decoded once and every frame goes
through every method, so nothing holds the clip. A method that fails on an item gets an error
row (one log line) and the evaluation goes on.
"""

from __future__ import annotations

import logging
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torch import Tensor

from sagc.core.errors import SagcError, first_line
from sagc.core.synth import DAY_LIGHT
from sagc.stream.media.frame import pixels_to_tensor, tensor_to_pixels
from sagc.stream.media.images import read_image
from sagc.stream.run.threaded import read_ahead

from .datasets import ImagePair, video_frames
from .methods import Method
from .metrics import luma, psnr, ssim
from .niqe import NiqeParams, niqe
from .perceptual import Lpips
from .temporal import MotionFlow, TemporalMeter, mean_luma

__all__ = ["EvalOptions", "Row", "EvalReport", "evaluate_images", "evaluate_video", "describe_device"]

log = logging.getLogger(__name__)

_THUMB_HEIGHT = 160


@dataclass
class EvalOptions:
    """What to measure and where."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    lpips: Lpips | None = None
    niqe: bool = True
    niqe_params: NiqeParams | None = None
    y_channel: bool = False  # also PSNR/SSIM on MATLAB Y
    sheet_items: int = 8  # rows of the contact sheet
    max_input_luma: float | None = None  # skip inputs brighter than this (e.g. SICE's under-exposed third)


@dataclass
class Row:
    """One (item, method) result: metric values, milliseconds per frame, or the error."""

    item: str
    method: str
    values: dict[str, float] = field(default_factory=dict)
    ms: float | None = None
    error: str | None = None


@dataclass
class EvalReport:
    """Everything a report needs; written by :mod:`sagc.eval.report`."""

    kind: str
    source: str
    device: str
    methods: list[str]
    rows: list[Row] = field(default_factory=list)
    resolution: str = ""
    sheet_columns: list[str] = field(default_factory=list)
    sheet: list[tuple[str, list[np.ndarray]]] = field(default_factory=list)
    series: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    clip: dict[str, dict[str, float]] = field(default_factory=dict)  # video: per-method clip metrics

    def metric_names(self) -> list[str]:
        names: list[str] = []
        for row in self.rows:
            names += [k for k in row.values if k not in names]
        for values in self.clip.values():
            names += [k for k in values if k not in names]
        return names

    def means(self) -> dict[str, dict[str, float | int]]:
        """Per method: the mean of each metric over items (clip metrics as they are), ms/frame,
        and the number of failed items."""
        out: dict[str, dict[str, float]] = {}
        for method in self.methods:
            rows = [r for r in self.rows if r.method == method]
            good = [r for r in rows if r.error is None]
            summary: dict[str, float] = {}
            for name in self.metric_names():
                values = [r.values[name] for r in good if name in r.values and not math.isnan(r.values[name])]
                if values:
                    summary[name] = float(np.mean(values))
            summary.update(self.clip.get(method, {}))
            timed = [r.ms for r in good if r.ms is not None]
            # the first call warms up (allocations, kernel selection); leave it out when we can
            timed = timed[1:] if len(timed) > 1 else timed
            summary["ms_per_frame"] = float(np.mean(timed)) if timed else math.nan
            summary["failed"] = len(rows) - len(good)
            out[method] = summary
        return out


def describe_device(device: torch.device) -> str:
    """Human name of the device the methods ran on, for the report."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} torch threads)"


def _timed(method: Method, x: Tensor) -> tuple[Tensor, float]:
    sync = x.device.type == "cuda"
    if sync:
        torch.cuda.synchronize(x.device)
    start = time.perf_counter()
    y = method(x)
    if sync:
        torch.cuda.synchronize(x.device)
    return y, (time.perf_counter() - start) * 1000.0


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    size = (max(1, round(width * _THUMB_HEIGHT / height)), _THUMB_HEIGHT)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _image_metrics(y: Tensor, reference: Tensor | None, options: EvalOptions) -> dict[str, float]:
    values: dict[str, float] = {}
    if reference is not None:
        values["psnr"] = float(psnr(y, reference))
        values["ssim"] = float(ssim(y, reference))
        if options.y_channel:
            values["psnr_y"] = float(psnr(y, reference, y_channel=True))
            values["ssim_y"] = float(ssim(y, reference, y_channel=True))
        if options.lpips is not None:
            values["lpips"] = float(options.lpips(y, reference))
    if options.niqe:
        if min(y.shape[-2:]) >= 96:
            values["niqe"] = float(niqe(y, params=options.niqe_params))
        else:
            values["niqe"] = math.nan
    values["luma"] = float(luma(y.double()).mean())
    return values


def evaluate_images(
    items: Sequence[ImagePair],
    methods: Sequence[Method],
    *,
    options: EvalOptions,
    kind: str,
    source: str,
    on_item: Callable[[], None] | None = None,
) -> EvalReport:
    """Every method on every image; metrics against ``high`` when the items are paired."""
    paired = any(item.high is not None for item in items)
    report = EvalReport(kind, source, describe_device(options.device), [m.name for m in methods])
    report.sheet_columns = ["input"] + (["reference"] if paired else []) + report.methods
    sizes: set[str] = set()
    skipped = 0
    for item in items:
        try:
            size = _evaluate_item(item, methods, options, report)
        finally:
            if on_item is not None:
                on_item()
        if size is None:
            skipped += 1
        elif size:
            sizes.add(size)
    report.resolution = ", ".join(sorted(sizes))
    if skipped:
        log.info("%d of %d images brighter than mean luma %s skipped", skipped, len(items), options.max_input_luma)
        report.source += f" (mean luma <= {options.max_input_luma}: {len(items) - skipped} of {len(items)})"
    if items and skipped == len(items):
        raise SagcError(f"no image in {source} has mean luma <= {options.max_input_luma}")
    return report


def _error_rows(report: EvalReport, item: str, methods: Sequence[Method], error: str) -> str:
    for method in methods:
        report.rows.append(Row(item, method.name, error=error))
    log.warning("%s: %s; skipped", item, error)
    return ""


def _evaluate_item(item: ImagePair, methods: Sequence[Method], options: EvalOptions, report: EvalReport) -> str | None:
    """Run every method on one item and add its rows; returns its size ``WxH`` ("" when the
    item could not be evaluated, ``None`` when it is brighter than ``max_input_luma``)."""
    try:
        x = pixels_to_tensor(read_image(item.low).rgb, device=options.device)
        reference = (
            pixels_to_tensor(read_image(item.high).rgb, device=options.device) if item.high is not None else None
        )
    except SagcError as exc:  # an unreadable file is one failed item, not the end of the run
        return _error_rows(report, item.name, methods, str(exc))
    if options.max_input_luma is not None and float(luma(x).mean()) > options.max_input_luma:
        return None
    if reference is not None and reference.shape != x.shape:
        shapes = f"{tuple(x.shape[-2:])} vs {tuple(reference.shape[-2:])}"
        return _error_rows(report, item.name, methods, f"low and high sizes differ {shapes}")
    thumbs = [_thumbnail(_rgb8(x))] + ([_thumbnail(_rgb8(reference))] if reference is not None else [])
    for method in methods:
        row = Row(item.name, method.name)
        try:
            method.reset()
            y, row.ms = _timed(method, x)
            row.values = _image_metrics(y, reference, options)
            thumbs.append(_thumbnail(_rgb8(y)))
        except Exception as exc:  # noqa: BLE001 - one failing item is reported, not fatal
            row.error = first_line(exc)
            log.warning("method %s failed on %s: %s", method.name, item.name, row.error)
            thumbs.append(np.zeros_like(thumbs[0]))
        report.rows.append(row)
    if len(report.sheet) < options.sheet_items:
        report.sheet.append((item.name, thumbs))
    return f"{x.shape[-1]}x{x.shape[-2]}"


class _Thumbs:
    """Keeps at most ``rows`` evenly spaced thumbnails of a stream of unknown length."""

    def __init__(self, rows: int) -> None:
        self.rows, self.stride = max(rows, 1), 1
        self.kept: list[tuple[int, list[np.ndarray]]] = []

    def wants(self, index: int) -> bool:
        return index % self.stride == 0

    def add(self, index: int, thumbs: list[np.ndarray]) -> None:
        self.kept.append((index, thumbs))
        if len(self.kept) > self.rows:
            self.stride *= 2
            self.kept = [(i, t) for i, t in self.kept if i % self.stride == 0]


def evaluate_video(
    spec: str,
    methods: Sequence[Method],
    *,
    options: EvalOptions,
    darken_seed: int | None = None,
    warping: bool = True,
    max_frames: int | None = None,
    on_frame: Callable[[], None] | None = None,
    light: tuple[float, float] = DAY_LIGHT,
) -> EvalReport:
    """Stream a clip through every method: per-frame PSNR/SSIM when a reference exists (with
    ``darken_seed`` the clip itself is the reference of its darkened copy), mean luma, and the
    clip's flicker and warping error per method. Flow for the warping error is computed on the
    reference when there is one, else on the input."""
    report = EvalReport("video", spec, describe_device(options.device), [m.name for m in methods])
    paired = darken_seed is not None
    report.sheet_columns = ["input"] + (["reference"] if paired else []) + report.methods
    meters = {m.name: TemporalMeter(warping=warping) for m in methods}
    motion_flow = MotionFlow() if warping else None
    failed: set[str] = set()
    thumbs = _Thumbs(options.sheet_items)
    for method in methods:
        method.reset()
    frames = 0
    input_luma: list[float] = []
    # Decoding, darkening and the motion flow run ahead in their own thread.
    frames_in = read_ahead(
        _prepared(video_frames(spec, darken_seed=darken_seed, max_frames=max_frames, light=light), motion_flow)
    )
    for index, (frame, original, rgb8, reference8, flow) in enumerate(frames_in):
        frames += 1
        x = pixels_to_tensor(frame.rgb, device=options.device)
        reference = pixels_to_tensor(original.rgb, device=options.device) if original is not None else None
        input_luma.append(mean_luma(rgb8))
        keep = thumbs.wants(index)
        row_thumbs = [_thumbnail(rgb8)] + ([_thumbnail(reference8)] if reference8 is not None else []) if keep else []
        for method in methods:
            if method.name in failed:
                continue
            row = Row(f"frame {index}", method.name)
            try:
                y, row.ms = _timed(method, x)
                out8 = _rgb8(y)
                values = {"luma": mean_luma(out8)}
                if reference is not None:
                    values["psnr"] = float(psnr(y, reference))
                    values["ssim"] = float(ssim(y, reference))
                row.values = values
                meters[method.name].update(rgb8, out8, flow)
                if keep:
                    row_thumbs.append(_thumbnail(out8))
            except Exception as exc:  # noqa: BLE001 - a failing method is reported, others go on
                row.error = first_line(exc)
                failed.add(method.name)
                log.warning("method %s failed at frame %d: %s (skipped for the rest of the clip)",
                            method.name, index, row.error)  # fmt: skip
                if keep:
                    row_thumbs.append(np.zeros_like(row_thumbs[0]))
            report.rows.append(row)
        if keep:
            thumbs.add(index, row_thumbs)
        if index == 0:
            report.resolution = f"{frame.width}x{frame.height}"
        if on_frame is not None:
            on_frame()
    report.sheet = [(f"frame {i}", t) for i, t in thumbs.kept]
    report.series["input"] = {"luma": input_luma}
    for method in methods:
        meter = meters[method.name]
        report.series[method.name] = {"luma": meter.output_luma}
        if method.name not in failed:
            report.clip[method.name] = {"flicker": meter.flicker, "warp_error": meter.warping_error}
    log.info("evaluated %d frames of %s", frames, spec)
    return report


def _rgb8(x: Tensor) -> np.ndarray:
    """1×3×H×W float in [0, 1] → H×W×3 uint8 (rounded), as the sinks write it."""
    return tensor_to_pixels(x, dtype=np.uint8)


def _as_8bit(rgb: np.ndarray) -> np.ndarray:
    return rgb if rgb.dtype == np.uint8 else (rgb >> 8).astype(np.uint8)


def _prepared(frames, motion_flow: MotionFlow | None):
    """(input, reference, input 8-bit, reference 8-bit, motion flow) per frame."""
    for frame, original in frames:
        rgb8 = _as_8bit(frame.rgb)
        reference8 = None if original is None else _as_8bit(original.rgb)
        flow = motion_flow.update(rgb8 if reference8 is None else reference8) if motion_flow is not None else None
        yield frame, original, rgb8, reference8, flow

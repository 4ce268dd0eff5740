"""Write an :class:`EvalReport`: terminal table, ``report.json``, ``report.csv``, contact sheet,
and for video a per-frame brightness/flicker plot.

JSON has no infinity: an infinite PSNR (identical images) is written as the string ``"inf"``,
a missing value as ``null``. The CSV writes them as ``inf`` and an empty cell.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import cv2
import numpy as np

from sagc.core.atomic import atomic_write, atomic_write_bytes

from .evaluator import EvalReport

__all__ = ["format_table", "write_report", "contact_sheet", "video_plot"]

# lower is better for these; the table marks the best method per column either way
_LOWER_BETTER = {"lpips", "niqe", "flicker", "warp_error", "ms_per_frame"}
_DECIMALS = {"psnr": 2, "psnr_y": 2, "ssim": 4, "ssim_y": 4, "lpips": 4, "niqe": 3, "luma": 3, "flicker": 3,
             "warp_error": 6, "ms_per_frame": 1}  # fmt: skip


def _cell(name: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.{_DECIMALS.get(name, 3)}f}"


def format_table(report: EvalReport) -> str:
    """A fixed-width table: one row per method, the mean of each metric and ms/frame."""
    means = report.means()
    names = report.metric_names() + ["ms_per_frame"]
    header = ["method"] + [("ms/frame" if n == "ms_per_frame" else n) for n in names] + ["failed"]
    body = [[m] + [_cell(n, means[m].get(n)) for n in names] + [str(int(means[m]["failed"]))] for m in report.methods]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in [header, *body]]  # fmt: skip
    lines.insert(1, "-" * len(lines[0]))
    where = f"{report.kind}: {report.source}  [{report.resolution}]  device: {report.device}"
    return where + "\n" + "\n".join(lines)


def _json_value(value: float | None) -> float | str | None:
    if isinstance(value, int):
        return value
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _report_dict(report: EvalReport) -> dict:
    means = report.means()
    return {
        "kind": report.kind,
        "source": report.source,
        "device": report.device,
        "resolution": report.resolution,
        "methods": [
            {"name": m, **{k: _json_value(v) for k, v in means[m].items()}, **_clip(report, m)} for m in report.methods
        ],
        "items": [
            {
                "item": r.item,
                "method": r.method,
                **{k: _json_value(v) for k, v in r.values.items()},
                "ms": _json_value(r.ms),
                "error": r.error,
            }
            for r in report.rows
        ],
    }


def _clip(report: EvalReport, method: str) -> dict:
    series = report.series.get(method)
    return {"per_frame_luma": series["luma"]} if series else {}


def _csv_value(value: float | None) -> str:
    if value is None or math.isnan(value):
        return ""
    return "inf" if math.isinf(value) else repr(float(value))


def _write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _csv_text(report: EvalReport) -> str:
    names = report.metric_names()
    lines: list[list[str]] = [["item", "method", *names, "ms", "error"]]
    for r in report.rows:
        lines.append([r.item, r.method, *(_csv_value(r.values.get(n)) for n in names), _csv_value(r.ms), r.error or ""])
    for method, summary in report.means().items():
        lines.append(["mean", method, *(_csv_value(summary.get(n)) for n in names),
                      _csv_value(summary["ms_per_frame"]), ""])  # fmt: skip

    class _Buffer(list):
        def write(self, text: str) -> None:
            self.append(text)

    buffer = _Buffer()
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    return "".join(buffer)


def contact_sheet(report: EvalReport) -> np.ndarray | None:
    """RGB uint8 grid: a row per item (or sampled frame), a column per input/reference/method."""
    if not report.sheet:
        return None
    columns = report.sheet_columns
    widths = [max(t[i].shape[1] for _, t in report.sheet) for i in range(len(columns))]
    label_w, head_h, pad = 160, 28, 4
    height = report.sheet[0][1][0].shape[0]
    canvas = np.full((head_h + len(report.sheet) * (height + pad), label_w + sum(w + pad for w in widths), 3), 24,
                     np.uint8)  # fmt: skip
    font = cv2.FONT_HERSHEY_SIMPLEX
    x = label_w
    for name, width in zip(columns, widths, strict=True):
        cv2.putText(canvas, name[: max(4, width // 9)], (x + 4, 20), font, 0.5, (235, 235, 235), 1, cv2.LINE_AA)
        x += width + pad
    for r, (item, thumbs) in enumerate(report.sheet):
        y = head_h + r * (height + pad)
        cv2.putText(canvas, item[:18], (6, y + height // 2), font, 0.5, (235, 235, 235), 1, cv2.LINE_AA)
        x = label_w
        for thumb, width in zip(thumbs, widths, strict=True):
            canvas[y : y + thumb.shape[0], x : x + thumb.shape[1]] = thumb
            x += width + pad
    return canvas


def video_plot(report: EvalReport, path: Path) -> Path | None:
    """PNG with per-frame mean luma (top) and its frame-to-frame change (bottom) per method."""
    if report.kind != "video" or not report.series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for name, series in report.series.items():
        values = np.asarray(series["luma"])
        if values.size == 0:
            continue
        style = {"color": "black", "linestyle": "--"} if name == "input" else {}
        top.plot(values, label=name, linewidth=1.2, **style)
        bottom.plot(np.arange(1, values.size), np.abs(np.diff(values)), label=name, linewidth=1.0, **style)
    top.set_ylabel("mean luma")
    bottom.set_ylabel("|Δ mean luma|  (flicker)")
    bottom.set_xlabel("frame")
    top.legend(loc="best", fontsize="small")
    top.set_title(f"{Path(report.source).name}: per-frame brightness and flicker")
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)


REPORT_FILES = {"json": "report.json", "csv": "report.csv", "sheet": "contact_sheet.png", "plot": "video_plot.png"}
"""The files a report may write into its folder, by kind."""


def report_paths(out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Where :func:`write_report` puts each file in ``out_dir`` (check them before evaluating)."""
    return {kind: Path(out_dir) / name for kind, name in REPORT_FILES.items()}


def write_report(report: EvalReport, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write all report files into ``out_dir``; returns their paths by kind."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = report_paths(out)
    written = {"json": paths["json"], "csv": paths["csv"]}
    _write_text(written["json"], json.dumps(_report_dict(report), indent=2, allow_nan=False) + "\n")
    _write_text(written["csv"], _csv_text(report))
    sheet = contact_sheet(report)
    if sheet is not None:
        ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        if ok:
            written["sheet"] = paths["sheet"]
            atomic_write_bytes(written["sheet"], png.tobytes())
    plot = video_plot(report, paths["plot"])
    if plot is not None:
        written["plot"] = plot
    return written

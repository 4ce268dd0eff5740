"""``sagc preview``: live before|after view of a camera, stream, lavfi graph or paced file."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from sagc.cli.options import add_enhancer_options, enhancer_from_args, parse_device, stop_on_signals
from sagc.core.errors import SagcError

from .options import add_device_option, add_overwrite_option, add_threads_option, set_threads

__all__ = ["add_preview"]

log = logging.getLogger("sagc")


def preview_smooth() -> float:
    """The γ smoothing a preview runs with unless --smooth or the weights say otherwise: the
    setting's own "on" value."""
    from sagc.models.settings import controls

    return float(controls()["smoothing"].on)


def add_preview(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preview",
        help="live preview of a webcam, stream or file: window and/or browser page",
        description="Shows input | enhanced output live. Keeps only the newest frame (drops are counted), "
        "so latency stays bounded. Window keys: s smoothing, d denoise, g exposure gate, u guided upsampling, "
        f"t temporal noise reduction, -/+ EV, v view, q quit. Smoothing is on ({preview_smooth()}) unless "
        "--smooth 0. Ctrl-C ends the preview.",
    )
    p.add_argument("--source", required=True,
                   help="webcam index (0), device (/dev/video2), rtsp/http URL, lavfi:GRAPH, or a file")  # fmt: skip
    p.add_argument("--size", metavar="WxH", help="camera capture size, e.g. 640x480")
    p.add_argument("--realtime", action="store_true", help="pace a file at its frame rate (default: every frame)")
    add_enhancer_options(p)
    add_device_option(p)
    add_threads_option(p)
    p.add_argument("--view", choices=("side", "split"), default="side", help="before|after layout (default side)")
    p.add_argument("--serve", metavar="[HOST:]PORT", help="serve the browser page (host defaults to 127.0.0.1)")
    p.add_argument("--record", metavar="OUT", help="also write what is shown to this video file")
    add_overwrite_option(p, what="an existing --record file")
    window = p.add_mutually_exclusive_group()
    window.add_argument("--window", dest="window", action="store_true", default=None, help="force the local window")
    window.add_argument("--no-window", dest="window", action="store_false", help="no local window")
    p.add_argument("--frames", type=int, help="stop after showing this many frames")
    p.add_argument("--retries", type=int, default=10, help="reconnect attempts for network sources (default 10)")
    p.set_defaults(handler=_run_preview)


def _has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _run_preview(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sagc.core.outputs import check_outputs
    from sagc.stream.apps.live import LiveCapture, parse_live_source
    from sagc.stream.apps.preview import PreviewSession
    from sagc.stream.apps.serve import PreviewServer, parse_address
    from sagc.stream.enhance.stages import make_stage
    from sagc.stream.media.sinks import container_for

    if args.frames is not None and args.frames < 1:
        raise SagcError("--frames must be at least 1")
    window = _has_display() if args.window is None else args.window
    if window and not _has_display():
        raise SagcError("--window: no display here (DISPLAY is not set); use --serve PORT for the browser page")
    if not window and not args.serve and not args.record:
        raise SagcError("no display here: use --serve PORT (browser page) and/or --record OUT")
    address = parse_address(args.serve) if args.serve else None
    if args.record:
        container_for(Path(args.record))
        source = [args.source] if Path(args.source).is_file() else []
        check_outputs([args.record], source, overwrite=args.overwrite)
    set_threads(args.threads)
    spec = parse_live_source(args.source, size=args.size)
    stage = make_stage(enhancer_from_args(args, smooth=preview_smooth()), device=parse_device(args.device))
    capture = LiveCapture(spec, realtime=args.realtime, retries=args.retries, planar=stage.planar)
    try:
        capture.wait_open()
    except BaseException:
        capture.close()
        raise
    session = PreviewSession(capture, stage, view=args.view, record=args.record,
                             overwrite=args.overwrite, max_frames=args.frames)  # fmt: skip
    server = PreviewServer(session, *address) if address else None
    try:
        if server is not None:
            server.start()
            print(f"preview page: {server.url}", flush=True)
        session.start()
        with stop_on_signals() as stopper:
            if window:
                _window_loop(session, stopper.event)
            else:
                while not stopper.event.is_set() and not session.wait(0.2):
                    pass
    finally:
        session.close()
        if server is not None:
            server.close()
    if session.error is not None:
        raise session.error
    stats = session.stats()
    print(f"shown {stats.shown} frames, dropped {stats.dropped} of {stats.received}, latency p50 "
          f"{stats.latency_p50_ms:.1f} ms / p95 {stats.latency_p95_ms:.1f} ms")  # fmt: skip
    if args.record:
        print(f"recorded: {args.record}")
    if capture.error is not None:
        raise capture.error
    return 0


def _window_loop(session, stop) -> None:
    # OpenCV's bundled Qt looks for fonts in its own folder and warns on every window otherwise.
    os.environ.setdefault("QT_LOGGING_RULES", "default.warning=false")
    import cv2

    from sagc.models.settings import adjustables, controls
    from sagc.stream.apps.preview import VIEWS, overlay

    toggles = {ord(s.key): name for name, s in controls().items() if s.key}
    steps = {ord(key): (name, sign * s.step) for name, s in adjustables().items() if s.keys
             for key, sign in zip(s.keys, (-1, 1), strict=True)}  # fmt: skip
    title = "sagc preview (s: smoothing, v: view, q: quit)"
    last = 0
    try:
        while not stop.is_set():
            frame_id, rgb = session.latest(last, timeout=0.05)
            if rgb is not None and frame_id != last:
                last = frame_id
                cv2.imshow(title, cv2.cvtColor(overlay(rgb, session.stats()), cv2.COLOR_RGB2BGR))
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), 27) or (rgb is not None and not session.stats().running):
                break
            if key in toggles:
                session.request(toggles[key], not session.stats().controls[toggles[key]])
            elif key in steps:
                name, delta = steps[key]
                setting = adjustables()[name]
                value = min(setting.high, max(setting.low, session.stats().values[name] + delta))
                session.request(name, value)
            elif key == ord("v"):
                session.request("view", VIEWS[(VIEWS.index(session.view) + 1) % len(VIEWS)])
            if session.wait(0):
                break
            time.sleep(0.001)
    finally:
        cv2.destroyAllWindows()

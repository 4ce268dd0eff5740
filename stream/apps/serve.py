"""The preview's browser page: live view as MJPEG, counters, and controls, on 127.0.0.1 by default.

Routes: ``/`` the page; ``/stream.mjpg`` the live view (multipart JPEG); ``/frame.jpg`` the
newest view once; ``/stats`` counters as JSON; ``POST /control`` with a JSON object of the
preview's controls (:func:`sagc.models.settings.controls`: ``smoothing``, ``denoise``, ``gate``,
``guide``, ``temporal`` as booleans), its adjustables (:func:`sagc.models.settings.adjustables`:
``ev`` as a number of stops) and/or ``{"view": "side"|"split"}``.

The network is treated as hostile: only requests addressed to the bound host or ``localhost`` are
served (a page on another site cannot read the camera through DNS rebinding); ``POST /control``
takes ``application/json`` of at most 4 KB with JSON booleans and numbers, and a cross-site ``Origin`` is
refused; idle sockets time out; a viewer that goes away is a debug line.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import cv2
import numpy as np

from sagc.core.errors import SagcError
from sagc.models.settings import adjustables, controls
from sagc.stream.apps.preview import PreviewSession, check_control

__all__ = ["PreviewServer", "parse_address"]

log = logging.getLogger(__name__)

_BOUNDARY = "sagcframe"
_JPEG_QUALITY = 80
MAX_BODY = 4096  # bytes: a control request is a few dozen
SOCKET_TIMEOUT = 10.0  # seconds a client may stall a read or a write
_ANY_INTERFACE = ("", "0.0.0.0", "::")

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>sagc preview</title>
<style>
  body { background: #181818; color: #eee; font: 14px system-ui, sans-serif; margin: 16px; }
  #view { max-width: 100%; border: 1px solid #444; display: block; }
  #bar { margin: 8px 0; display: flex; gap: 16px; align-items: center; flex-wrap: wrap; }
  button { font: inherit; padding: 4px 12px; }
  .on { background: #2d6; } .off { background: #888; }
  #counters span { margin-right: 14px; }
</style>
</head>
<body>
<h1>sagc preview</h1>
<div id="bar">
  __BUTTONS__
  <button id="viewmode">view: …</button>
  <div id="counters">
    <span>fps <b id="fps">-</b></span>
    <span>latency p50 <b id="latency">-</b> ms</span>
    <span>p95 <b id="latency95">-</b> ms</span>
    <span>shown <b id="shown">0</b></span>
    <span>dropped <b id="dropped">0</b></span>
    <span id="state"></span>
  </div>
</div>
<img id="view" src="/stream.mjpg" alt="before | after">
<script>
let state = {view: "side"};
const labels = __LABELS__;
const steps = __STEPS__;
function render(s) {
  state = s;
  for (const [key, label] of Object.entries(labels)) {
    const button = document.getElementById(key);
    button.textContent = label + ": " + (s[key] ? "on" : "off");
    button.className = s[key] ? "on" : "off";
  }
  for (const name of Object.keys(steps)) {
    document.getElementById(name).textContent = (s[name] > 0 ? "+" : "") + s[name];
  }
  document.getElementById("viewmode").textContent = "view: " + s.view;
  document.getElementById("fps").textContent = s.fps.toFixed(1);
  document.getElementById("latency").textContent = s.latency_p50_ms.toFixed(1);
  document.getElementById("latency95").textContent = s.latency_p95_ms.toFixed(1);
  document.getElementById("shown").textContent = s.shown;
  document.getElementById("dropped").textContent = s.dropped;
  document.getElementById("state").textContent = s.running ? "" : "source ended";
}
async function poll() {
  try { render(await (await fetch("/stats")).json()); } catch (e) {}
}
async function control(body) {
  const r = await fetch("/control", {method: "POST", headers: {"Content-Type": "application/json"},
                                     body: JSON.stringify(body)});
  if (r.ok) { setTimeout(poll, 150); }
}
for (const key of Object.keys(labels)) {
  document.getElementById(key).onclick = () => control({[key]: !state[key]});
}
for (const [name, step] of Object.entries(steps)) {
  document.getElementById(name + "-down").onclick = () => control({[name]: state[name] - step});
  document.getElementById(name + "-up").onclick = () => control({[name]: state[name] + step});
}
document.getElementById("viewmode").onclick = () => control({view: state.view === "side" ? "split" : "side"});
poll();
setInterval(poll, 500);
</script>
</body>
</html>
"""


def _page() -> str:
    """The page with one toggle button per preview control and − / + buttons per stepped setting
    (both from the run-time settings)."""
    buttons = [f'<button id="{name}" class="off">{s.label}: …</button>' for name, s in controls().items()]
    for name, s in adjustables().items():
        down, up = f'<button id="{name}-down">{s.label} −</button>', f'<button id="{name}-up">{s.label} +</button>'
        buttons.append(f'{down} <b id="{name}">0</b> {up}')
    labels = json.dumps({name: s.label for name, s in controls().items()})
    steps = json.dumps({name: s.step for name, s in adjustables().items()})
    return PAGE.replace("__BUTTONS__", "\n  ".join(buttons)).replace("__LABELS__", labels).replace("__STEPS__", steps)


def parse_address(text: str) -> tuple[str, int]:
    """``PORT`` or ``HOST:PORT`` → (host, port); the host defaults to 127.0.0.1."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise SagcError(f"--serve wants [HOST:]PORT such as 8765 or 127.0.0.1:8765, got {text!r}") from None
    if not 0 <= number <= 65535:
        raise SagcError(f"--serve port must be 0…65535, got {number}")
    return host, number


def _hostname(value: str) -> str | None:
    """The host name of a ``Host`` header or an origin's network location, lowercased."""
    try:
        return urlsplit(f"//{value.strip()}").hostname
    except ValueError:
        return None


def parse_controls(body: object) -> dict[str, bool | float | str]:
    """A ``POST /control`` body checked in full (:func:`~sagc.stream.apps.preview.check_control`, every
    key) before anything changes; a ValueError says what is accepted."""
    if not isinstance(body, dict) or not body:
        raise ValueError('send a JSON object of controls, e.g. {"smoothing": true}')
    return {name: check_control(name, value) for name, value in body.items()}


class _Server(ThreadingHTTPServer):
    """IPv4 or IPv6 by the host's form; errors of one connection are logged, never printed."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)

    def handle_error(self, request: object, client_address: tuple) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("client %s went away: %s", client_address[0], exc)
        else:
            log.warning("request from %s failed: %s", client_address[0], exc)


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


class _JpegCache:
    """Encode each view once, however many clients watch."""

    def __init__(self, session: PreviewSession) -> None:
        self.session = session
        self._lock = threading.Lock()
        self._id = -1
        self._data = b""

    def get(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        frame_id, rgb = self.session.latest(after, timeout)
        if rgb is None:
            return frame_id, None
        with self._lock:
            if frame_id != self._id:
                self._id, self._data = frame_id, _jpeg(rgb)
            return self._id, self._data


class PreviewServer:
    """Serves the page for one :class:`PreviewSession` in a background thread."""

    def __init__(self, session: PreviewSession, host: str = "127.0.0.1", port: int = 0) -> None:
        self.session = session
        cache = _JpegCache(session)
        stopping = threading.Event()
        self._stopping = stopping
        allowed = None if host in _ANY_INTERFACE else {host.lower().strip("[]"), "localhost"}

        class Handler(BaseHTTPRequestHandler):
            timeout = SOCKET_TIMEOUT

            def log_message(self, fmt: str, *args: object) -> None:
                log.debug("http %s - " + fmt, self.address_string(), *args)

            def _addressed_to_us(self) -> bool:
                """False (after answering 403) when the Host header names another host."""
                name = _hostname(self.headers.get("Host", ""))
                if name is None or (allowed is not None and name not in allowed):
                    self._json(
                        HTTPStatus.FORBIDDEN, {"error": "unknown Host; open the page by the address sagc prints"}
                    )
                    return False
                return True

            def _refuse(self, status: HTTPStatus, message: str) -> None:
                self.close_connection = True  # the body (if any) is not read: drop the connection
                self._json(status, {"error": message})

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, payload: object) -> None:
                self._send(status, json.dumps(payload).encode(), "application/json")

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if not self._addressed_to_us():
                    return
                path = self.path.split("?")[0]
                if path == "/":
                    self._send(HTTPStatus.OK, _page().encode(), "text/html; charset=utf-8")
                elif path == "/stats":
                    self._json(HTTPStatus.OK, session.stats().as_json())
                elif path == "/frame.jpg":
                    _, data = cache.get(0, timeout=5.0)
                    if data is None:
                        self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "no frame yet"})
                    else:
                        self._send(HTTPStatus.OK, data, "image/jpeg")
                elif path == "/stream.mjpg":
                    self._stream()
                else:
                    self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page {path}"})

            def _stream(self) -> None:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                last = 0
                try:
                    while not stopping.is_set():
                        frame_id, data = cache.get(last, timeout=0.5)
                        if data is None or frame_id == last:
                            if not session.stats().running:
                                break
                            continue
                        last = frame_id
                        head = f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                        self.wfile.write(head.encode() + data + b"\r\n")
                        self.wfile.flush()
                except (ConnectionError, TimeoutError) as exc:
                    log.debug("viewer %s went away: %s", self.address_string(), exc)

            def do_POST(self) -> None:  # noqa: N802
                if not self._addressed_to_us():
                    return
                if self.path.split("?")[0] != "/control":
                    self._refuse(HTTPStatus.NOT_FOUND, f"no such endpoint {self.path}")
                    return
                origin = self.headers.get("Origin")
                if origin is not None and urlsplit(origin).netloc.lower() != self.headers.get("Host", "").lower():
                    self._refuse(HTTPStatus.FORBIDDEN, "cross-site requests are refused")
                    return
                if self.headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
                    self._refuse(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send Content-Type: application/json")
                    return
                try:
                    length = int(self.headers.get("Content-Length", ""))
                except ValueError:
                    self._refuse(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length")
                    return
                if not 0 <= length <= MAX_BODY:
                    self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a control request is at most {MAX_BODY} bytes")
                    return
                try:
                    body = parse_controls(json.loads(self.rfile.read(length) or b"null"))
                except (ValueError, UnicodeDecodeError, OverflowError, TypeError) as exc:
                    self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)[:300]})
                    return
                except RecursionError:  # JSON nested deeper than Python parses
                    self._json(HTTPStatus.BAD_REQUEST, {"error": "the JSON is nested too deep; send a flat object"})
                    return
                for name, value in body.items():
                    session.request(name, value)
                self._json(HTTPStatus.OK, {"requested": body})

        try:
            self._server = _Server((host, port), Handler)
        except OSError as exc:
            raise SagcError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
        self.host, self.port = self._server.server_address[:2]
        if allowed is not None:  # a name (localhost) is served at the address it resolved to: both are ours
            allowed.add(str(self.host).lower())
        self._thread = threading.Thread(target=self._server.serve_forever, name="sagc-http", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in str(self.host) else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> PreviewServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> PreviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Live sources and `sagc preview`: latest-frame policy, reconnects, recording, and the browser
page driven in real headless Chromium."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from sagc.cli import main
from sagc.core.errors import SagcError
from sagc.models import ExposureGate, load_enhancer
from sagc.stream.apps.live import EndOfStream, LatestFrame, LiveCapture, LiveFrame, parse_live_source
from sagc.stream.apps.preview import PreviewSession, compose
from sagc.stream.apps.serve import PreviewServer, parse_address
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.media.frame import Frame
from tests.conftest import FFPROBE, ffprobe, make_clip, needs_ffmpeg

LAVFI = "lavfi:testsrc2=size=160x120:rate=25"


def _frames(capture: LiveCapture, count: int, *, delay: float = 0.0, timeout: float = 10.0) -> list[LiveFrame]:
    got: list[LiveFrame] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        try:
            item = capture.get(timeout=0.5)
        except EndOfStream:
            break
        if item is not None:
            got.append(item)
            time.sleep(delay)
    return got


def test_latest_frame_drops_and_counts_when_the_consumer_is_slow() -> None:
    box = LatestFrame()
    for i in range(10):
        box.put(LiveFrame(Frame(np.zeros((2, 2, 3), np.uint8), index=i), time.monotonic()))
    item = box.get(timeout=0)
    assert item is not None and item.frame.index == 9
    assert (box.received, box.dropped) == (10, 9)
    assert box.get(timeout=0.01) is None
    box.close()
    with pytest.raises(EndOfStream):
        box.get(timeout=0.01)


def test_paced_source_drops_stale_frames_for_a_slow_consumer(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", frames=40, rate=40)
    with LiveCapture(parse_live_source(str(clip)), realtime=True) as capture:
        got = _frames(capture, 100, delay=0.1)
    indices = [g.frame.index for g in got]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert capture.dropped > 10 and capture.received == 40
    assert len(got) + capture.dropped == 40


def test_unpaced_file_delivers_every_frame_in_order(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", frames=30)
    with LiveCapture(parse_live_source(str(clip)), realtime=False) as capture:
        got = _frames(capture, 100, delay=0.005)
    assert [g.frame.index for g in got] == list(range(30))
    assert capture.dropped == 0


def test_network_source_reconnects_with_backoff(tmp_path: Path) -> None:
    make_clip(tmp_path / "c.mp4", frames=10)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/c.mp4"
        with LiveCapture(parse_live_source(url), retries=5, backoff=0.05) as capture:
            deadline = time.monotonic() + 20
            while capture.reconnects < 2 and time.monotonic() < deadline:
                capture.get(timeout=0.2)
        assert capture.reconnects >= 2 and len(requests) >= 3
    finally:
        server.shutdown()
        server.server_close()


def test_network_source_gives_up_with_a_clear_error() -> None:
    capture = LiveCapture(parse_live_source("http://127.0.0.1:9/none.mp4"), retries=2, backoff=0.01)
    with capture, pytest.raises(SagcError, match="gave up after 2 reconnects"):
        capture.wait_open()


def test_camera_sources_map_to_capture_devices() -> None:
    spec = parse_live_source("0", size="640x480", platform="linux")
    assert (spec.kind, spec.target, spec.input_format) == ("camera", "/dev/video0", "v4l2")
    assert dict(spec.options) == {"video_size": "640x480"}
    assert parse_live_source("1", platform="darwin").input_format == "avfoundation"
    assert parse_live_source("video=USB Camera").input_format == "dshow"
    with pytest.raises(SagcError, match="video=DEVICE NAME"):
        parse_live_source("0", platform="win32")
    with pytest.raises(SagcError, match="not a camera index"):
        parse_live_source("no_such_file.mp4")


def test_missing_camera_is_a_clear_error() -> None:
    capture = LiveCapture(parse_live_source("/dev/video97"))
    with capture, pytest.raises(SagcError, match="camera /dev/video97 not found"):
        capture.wait_open()


def test_compose_views() -> None:
    before = np.zeros((4, 6, 3), np.uint8)
    after = np.full((4, 6, 3), 200, np.uint8)
    assert compose(before, after, "side").shape == (4, 12, 3)
    split = compose(before, after, "split")
    assert split.shape == (4, 6, 3) and (split[:, :3] == 0).all() and (split[:, 4:] == 200).all()


@pytest.fixture
def session(weights: Path):
    stage = CpuStage(load_enhancer(weights, smooth=0.8))
    capture = LiveCapture(parse_live_source(LAVFI))
    capture.wait_open()
    preview = PreviewSession(capture, stage)
    preview.start()
    yield preview
    preview.close()


def test_smoothing_toggle_and_view_reach_the_pipeline(session: PreviewSession) -> None:
    first, _ = session.latest(0, timeout=10)
    assert session.stage.smoother is not None
    assert session.stage.enhancer.denoise == 0.0 and not session.stats().controls["denoise"]  # the test weights: off
    session.request("smoothing", False)
    assert session.stage.enhancer.gate is None and not session.stats().controls["gate"]
    assert session.stage.enhancer.guide == 0.0 and not session.stats().controls["guide"]
    session.request("denoise", True)
    session.request("gate", True)
    session.request("guide", True)
    session.request("view", "split")
    seen, view = session.latest(first + 1, timeout=10)
    seen, view = session.latest(seen, timeout=10)
    assert session.stage.smoother.alpha == 0.0 and session.view == "split"  # with the gate: night smoothing only
    assert session.stage.enhancer.denoise == 7.0 and session.stats().controls["denoise"]  # the default strength
    assert session.stage.enhancer.gate == ExposureGate() and session.stats().controls["gate"]  # the default gate
    assert session.stage.enhancer.guide == 0.5 and session.stats().controls["guide"]  # the default window
    assert view is not None and view.shape == (120, 160, 3)
    with pytest.raises(ValueError):
        session.request("view", "diagonal")


def test_server_routes_over_real_http(session: PreviewSession) -> None:
    with PreviewServer(session) as server:
        assert server.host == "127.0.0.1"
        page = urllib.request.urlopen(server.url, timeout=10).read().decode()
        assert "/stream.mjpg" in page and 'id="smoothing"' in page and 'id="denoise"' in page and 'id="gate"' in page
        jpeg = urllib.request.urlopen(server.url + "frame.jpg", timeout=10).read()
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (120, 320, 3)
        stats = json.loads(urllib.request.urlopen(server.url + "stats", timeout=10).read())
        assert stats["smoothing"] is True and stats["denoise"] is False and stats["shown"] > 0
        assert "latency_p50_ms" in stats
        toggle = urllib.request.Request(server.url + "control", data=b'{"denoise": true}', method="POST", headers=JSON)
        assert json.loads(urllib.request.urlopen(toggle, timeout=10).read()) == {"requested": {"denoise": True}}
        deadline = time.monotonic() + 10
        while not json.loads(urllib.request.urlopen(server.url + "stats", timeout=10).read())["denoise"]:
            assert time.monotonic() < deadline, "the denoise request never reached the loop"
            time.sleep(0.05)
        assert session.stage.enhancer.denoise == 7.0
        toggle = urllib.request.Request(server.url + "control", data=b'{"gate": true}', method="POST", headers=JSON)
        assert json.loads(urllib.request.urlopen(toggle, timeout=10).read()) == {"requested": {"gate": True}}
        while not json.loads(urllib.request.urlopen(server.url + "stats", timeout=10).read())["gate"]:
            assert time.monotonic() < deadline, "the gate request never reached the loop"
            time.sleep(0.05)
        assert session.stage.enhancer.gate is not None
        toggle = urllib.request.Request(server.url + "control", data=b'{"guide": true}', method="POST", headers=JSON)
        assert json.loads(urllib.request.urlopen(toggle, timeout=10).read()) == {"requested": {"guide": True}}
        while not json.loads(urllib.request.urlopen(server.url + "stats", timeout=10).read())["guide"]:
            assert time.monotonic() < deadline, "the guide request never reached the loop"
            time.sleep(0.05)
        assert session.stage.enhancer.guide > 0
        bad = urllib.request.Request(server.url + "control", data=b'{"colour": 1}', method="POST", headers=JSON)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(bad, timeout=10)
        assert info.value.code == 400
        with urllib.request.urlopen(server.url + "stream.mjpg", timeout=10) as stream:
            assert stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            assert stream.read(64).startswith(b"--sagcframe")


JSON = {"Content-Type": "application/json"}


def test_parse_address() -> None:
    assert parse_address("8765") == ("127.0.0.1", 8765)
    assert parse_address("0.0.0.0:80") == ("0.0.0.0", 80)
    with pytest.raises(SagcError, match="HOST:]PORT"):
        parse_address("eighty")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian chromium + chromium-driver not installed (apt-get install chromium chromium-driver): "
    "browser test skipped",
)
def test_page_in_headless_chromium(session: PreviewSession) -> None:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed: browser test skipped")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager reach for the network
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    with PreviewServer(session) as server:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            driver.set_page_load_timeout(30)
            driver.get(server.url)
            wait = WebDriverWait(driver, 20)
            assert driver.title == "sagc preview"
            wait.until(lambda d: int(d.find_element("id", "shown").text) > 0)
            snapshot = """
                const img = document.getElementById('view');
                if (!img.naturalWidth) return null;
                const c = document.createElement('canvas');
                c.width = img.naturalWidth; c.height = img.naturalHeight;
                const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
                const d = ctx.getImageData(0, 0, c.width, c.height).data;
                let h = 0; for (let i = 0; i < d.length; i += 7) { h = (h * 31 + d[i]) >>> 0; }
                return [c.width, c.height, h];
            """
            first = wait.until(lambda d: d.execute_script(snapshot))
            assert first[:2] == [320, 120]
            wait.until(lambda d: (s := d.execute_script(snapshot)) is not None and s[2] != first[2])
            button = driver.find_element("id", "smoothing")
            assert button.text == "smoothing: on"
            button.click()
            wait.until(lambda d: d.find_element("id", "smoothing").text == "smoothing: off")
            assert session.stage.smoother is None  # the click reached the enhancer
            driver.find_element("id", "denoise").click()
            wait.until(lambda d: d.find_element("id", "denoise").text == "denoise: on")
            assert session.stage.enhancer.denoise > 0
            driver.find_element("id", "gate").click()
            wait.until(lambda d: d.find_element("id", "gate").text == "exposure gate: on")
            assert session.stage.enhancer.gate is not None
            driver.find_element("id", "guide").click()
            wait.until(lambda d: d.find_element("id", "guide").text == "guided upsampling: on")
            assert session.stage.enhancer.guide > 0
            driver.find_element("id", "viewmode").click()
            wait.until(lambda d: d.find_element("id", "viewmode").text == "view: split")
            assert session.view == "split"
            driver.find_element("id", "ev-up").click()
            wait.until(lambda d: d.find_element("id", "ev").text == "+0.5")
            assert session.stage.settings.ev == 0.5
        finally:
            driver.quit()


@needs_ffmpeg
def test_cli_preview_records_what_is_shown(tmp_path: Path, weights: Path, capsys) -> None:
    out = tmp_path / "live.mp4"
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        code = main(["preview", "--source", LAVFI, "--weights", str(weights), "--no-window", "--record", str(out),
                     "--frames", "20"])  # fmt: skip
        # the model runs on one thread unless --threads says otherwise, as in enhance and bench:
        # thumbnail-size work gains nothing from a second thread the decoder and encoder need
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    assert "shown 20 frames" in capsys.readouterr().out
    assert FFPROBE is not None
    width, height, frames = ffprobe(out, "-count_frames", "-select_streams", "v:0", "-show_entries",
                                    "stream=width,height,nb_read_frames")[0].split(",")  # fmt: skip
    assert (int(width), int(height), int(frames)) == (320, 120, 20)
    assert not list(tmp_path.glob("*.partial*"))


def test_cli_preview_errors_are_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    cases = [
        (["--source", LAVFI], "no display here"),
        (["--source", LAVFI, "--serve", "eighty"], "[HOST:]PORT"),
        (["--source", "/dev/video97", "--no-window", "--serve", "0"], "camera /dev/video97 not found"),
        (["--source", LAVFI, "--window"], "no display here"),
        (["--source", LAVFI, "--smooth", "1.5", "--serve", "0"], "smooth must be a finite number in [0, 1)"),
        (["--source", LAVFI, "--threads", "0", "--serve", "0"], "--threads must be between 1 and"),
    ]
    for argv, message in cases:
        assert main(["preview", *argv]) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)


XVFB_RUN = shutil.which("xvfb-run")


@pytest.mark.skipif(XVFB_RUN is None, reason="xvfb-run not installed (apt-get install xvfb xauth): window test skipped")
def test_cli_preview_window_on_a_virtual_display(tmp_path: Path, weights: Path) -> None:
    """The OpenCV window path, in a real subprocess on Xvfb (OpenCV loads before PyAV)."""
    out = tmp_path / "shown.mkv"
    argv = [XVFB_RUN, "-a", sys.executable, "-m", "sagc", "preview", "--source", LAVFI, "--weights",
            str(weights), "--frames", "15", "--record", str(out)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "shown 15 frames" in done.stdout
    assert "QFontDatabase" not in done.stderr
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 15


def test_the_live_loop_lets_the_stage_estimate_on_its_worker(tmp_path: Path) -> None:
    """No encoder takes the second core in preview: the stage's ``overlap`` is on while the loop
    runs (dark moving frames: their estimates run on the stage's worker) and back off after;
    a session made with ``overlap=False`` keeps every estimate in step."""
    seen: list[bool] = []

    class Watched(CpuStage):
        def submit(self, frame: Frame):
            seen.append(self.overlap)
            return super().submit(frame)

    stage = Watched(load_enhancer("default"))
    clip = make_clip(tmp_path / "dark.mp4", size=(240, 136), frames=16, brightness=0.25)
    with LiveCapture(parse_live_source(str(clip)), realtime=False, planar=True) as capture:
        capture.wait_open()
        session = PreviewSession(capture, stage, max_frames=12)
        session.run()
    assert len(seen) == 12 and all(seen) and stage.overlap is False
    assert stage._worker is not None  # the moving pattern estimated on the worker
    stage.close()
    seen.clear()
    in_step = Watched(load_enhancer("default"))
    with LiveCapture(parse_live_source(str(clip)), realtime=False, planar=True) as capture:
        capture.wait_open()
        PreviewSession(capture, in_step, max_frames=12, overlap=False).run()
    assert len(seen) == 12 and not any(seen) and in_step._worker is None  # every estimate in step
    in_step.close()

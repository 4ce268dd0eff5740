"""The preview server treats the network as hostile: real HTTP over loopback, headers set by hand."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
from pathlib import Path

import pytest

from sagc.cli import main
from sagc.models import load_enhancer
from sagc.stream.apps.live import LiveCapture, parse_live_source
from sagc.stream.apps.preview import PreviewSession
from sagc.stream.apps.serve import MAX_BODY, PreviewServer
from sagc.stream.enhance.cpu_stage import CpuStage

from .conftest import make_clip

LAVFI = "lavfi:testsrc2=size=160x120:rate=30"


@pytest.fixture
def server(weights: Path):
    capture = LiveCapture(parse_live_source(LAVFI))
    capture.wait_open()
    session = PreviewSession(capture, CpuStage(load_enhancer(weights, smooth=0.8)))
    session.start()
    with PreviewServer(session) as running:
        yield running
    session.close()


def request(server: PreviewServer, method: str, path: str, *, body: bytes | None = None, headers=None):
    """One request with exactly the headers given (Host included): (status, decoded JSON or bytes)."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None and "Content-Length" not in (headers or {}):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        data = response.read()
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return response.status, json.loads(data) if is_json else data
    finally:
        connection.close()


def host(server: PreviewServer) -> str:
    return f"127.0.0.1:{server.port}"


def control(server: PreviewServer, body: bytes, **extra: str):
    headers = {"Host": host(server), "Content-Type": "application/json", **extra}
    return request(server, "POST", "/control", body=body, headers=headers)


def test_controls_take_json_booleans_only(server):
    assert control(server, b'{"smoothing": false}')[0] == 200
    for body in (b'{"smoothing": "false"}', b'{"denoise": 1}', b'{"gate": null}', b'{"view": true}', b"[]", b"{}"):
        status, answer = control(server, body)
        assert status == 400, body
        assert "error" in answer
    assert control(server, b'{"guide": true, "smoothing": "yes"}')[0] == 400  # checked in full first
    time.sleep(0.3)
    controls = server.session.stats().controls
    assert controls["guide"] is False and controls["smoothing"] is False


def test_requests_for_other_hosts_are_refused(server):
    for name in ("attacker.example", f"attacker.example:{server.port}", "127.0.0.2", ""):
        status, _ = request(server, "GET", "/frame.jpg", headers={"Host": name} if name else {})
        assert status == 403, name
    assert control(server, b'{"denoise": true}', Host=f"evil.example:{server.port}")[0] == 403
    for name in (host(server), f"localhost:{server.port}", "localhost"):
        assert request(server, "GET", "/stats", headers={"Host": name})[0] == 200, name


def test_cross_site_and_wrong_type_posts_are_refused(server):
    assert control(server, b'{"denoise": true}', Origin="http://evil.example")[0] == 403
    assert control(server, b'{"denoise": true}', Origin=f"http://{host(server)}")[0] == 200
    headers = {"Host": host(server), "Content-Type": "text/plain"}
    assert request(server, "POST", "/control", body=b'{"denoise": true}', headers=headers)[0] == 415
    form = {"Host": host(server), "Content-Type": "application/x-www-form-urlencoded"}
    assert request(server, "POST", "/control", body=b"denoise=true", headers=form)[0] == 415


def test_body_size_is_capped_and_huge_lengths_are_refused_without_reading(server):
    big = b'{"view": "' + b"x" * MAX_BODY + b'"}'
    assert control(server, big)[0] == 413
    started = time.monotonic()
    assert control(server, b"{}", **{"Content-Length": str(10**12)})[0] == 413
    assert time.monotonic() - started < 5
    assert request(server, "GET", "/stats", headers={"Host": host(server)})[0] == 200  # still serving


def test_a_short_body_does_not_tie_up_the_server(server):
    stalled = socket.create_connection((server.host, server.port), timeout=30)
    head = (
        f"POST /control HTTP/1.1\r\nHost: {host(server)}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    stalled.sendall(head.encode() + b'{"den')
    try:
        assert request(server, "GET", "/stats", headers={"Host": host(server)})[0] == 200
        stalled.settimeout(30)
        started = time.monotonic()
        assert stalled.recv(1024) == b""  # the server gives up on the stalled body and closes
        assert time.monotonic() - started < 25
    finally:
        stalled.close()


def test_viewer_that_disconnects_is_a_debug_line(server, caplog, capfd):
    with caplog.at_level(logging.DEBUG, logger="sagc.stream.apps.serve"):
        for _ in range(3):
            viewer = socket.create_connection((server.host, server.port), timeout=10)
            viewer.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: {host(server)}\r\n\r\n".encode())
            viewer.recv(256)
            viewer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            viewer.close()  # a reset, as a closed browser tab
        deadline = time.monotonic() + 10
        while "went away" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.1)
    assert "went away" in caplog.text
    assert "Traceback" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 on this machine: [::1] test skipped")
def test_serve_on_ipv6_loopback(weights):
    capture = LiveCapture(parse_live_source(LAVFI))
    capture.wait_open()
    session = PreviewSession(capture, CpuStage(load_enhancer(weights, smooth=0.8)))
    session.start()
    try:
        try:
            server = PreviewServer(session, "::1", 0)
        except Exception as exc:  # noqa: BLE001 - a machine without an IPv6 loopback
            pytest.skip(f"cannot bind [::1] here: {exc}")
        with server:
            assert server.url.startswith("http://[::1]:")
            status, stats = request(server, "GET", "/stats", headers={"Host": f"[::1]:{server.port}"})
            assert status == 200 and "shown" in stats
            assert request(server, "GET", "/stats", headers={"Host": "evil.example"})[0] == 403
    finally:
        session.close()


def test_record_never_clobbers(tmp_path, weights, capsys):
    clip = make_clip(tmp_path / "clip.mp4", frames=4)
    before = clip.read_bytes()
    args = ["preview", "--source", str(clip), "--no-window", "--weights", str(weights), "--frames", "2"]
    assert main([*args, "--record", str(clip), "--overwrite"]) == 1
    assert "would overwrite the input" in capsys.readouterr().err
    assert clip.read_bytes() == before
    existing = tmp_path / "rec.mp4"
    existing.write_bytes(b"precious")
    assert main([*args, "--record", str(existing)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert existing.read_bytes() == b"precious"


def test_ev_is_stepped_over_http_with_numbers_in_range(server):
    assert control(server, b'{"ev": 1.5}')[0] == 200
    deadline = time.monotonic() + 10
    while request(server, "GET", "/stats", headers={"Host": host(server)})[1]["ev"] != 1.5:
        assert time.monotonic() < deadline, "the ev request never reached the stage"
        time.sleep(0.05)
    assert server.session.stage.settings.ev == 1.5
    for body in (b'{"ev": "1"}', b'{"ev": true}', b'{"ev": 9}', b'{"ev": NaN}'):
        assert control(server, body)[0] == 400, body
    page = request(server, "GET", "/", headers={"Host": host(server)})[1].decode()
    assert 'id="ev-up"' in page and 'id="ev-down"' in page


def test_malformed_numbers_and_deep_nesting_get_a_400(server):
    huge = b'{"ev": ' + b"9" * 400 + b"}"
    status, reply = control(server, huge)
    assert status == 400 and "ev" in reply["error"]
    deep = b'{"ev": ' + b"[" * 3000  # deeper than Python's JSON parser recurses (closing it would pass 4 KB)
    assert len(deep) <= MAX_BODY
    status, reply = control(server, deep)
    assert status == 400 and "error" in reply
    assert control(server, b'{"smoothing": true}')[0] == 200  # the server still answers


def test_a_server_bound_by_name_answers_at_the_address_it_prints(weights: Path):
    capture = LiveCapture(parse_live_source(LAVFI))
    capture.wait_open()
    session = PreviewSession(capture, CpuStage(load_enhancer(weights)))
    session.start()
    try:
        with PreviewServer(session, host="localhost") as running:
            printed = running.url.removeprefix("http://").rstrip("/")
            status, _ = request(running, "GET", "/stats", headers={"Host": printed})
            assert status == 200, running.url
            assert request(running, "GET", "/stats", headers={"Host": f"localhost:{running.port}"})[0] == 200
            assert request(running, "GET", "/stats", headers={"Host": f"evil.example:{running.port}"})[0] == 403
    finally:
        session.close()

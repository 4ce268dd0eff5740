"""Nothing a user can cause ends in a traceback: missing extras, Ctrl-C while loading, unsafe checkpoints."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from sagc.cli import main

from .conftest import make_clip, one_error


def test_eval_video_without_matplotlib_names_the_extra(tmp_path, monkeypatch, capsys):
    clip = make_clip(tmp_path / "c.mp4", frames=3)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    assert main(["eval", "video", str(clip), "--method", "identity", "--out", str(tmp_path / "r")]) == 1
    line = one_error(capsys)
    assert "matplotlib" in line and 'pip install "sagc[eval]"' in line
    assert not (tmp_path / "r").exists()


def test_train_without_pyyaml_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "yaml", None)
    assert main(["train", "enhancer", "--normal", str(tmp_path), "--out", str(tmp_path / "run")]) == 1
    line = one_error(capsys)
    assert "yaml" in line and 'pip install "sagc[train]"' in line


@pytest.mark.parametrize("delay", [0.2, 0.6, 1.0])
def test_ctrl_c_while_starting_exits_130_quietly(tmp_path, delay):
    command = [sys.executable, "-m", "sagc", "enhance", "lavfi:testsrc2=duration=600", "-o", str(tmp_path / "o.mp4")]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("sagc: interrupted")


def test_unsafe_checkpoint_is_refused_without_torch_advice(tmp_path, capsys):
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": 1, "kind": "sagc.enhancer", "extra": argparse.Namespace(x=1)}, unsafe)
    clip = make_clip(tmp_path / "c.mp4", frames=2)
    assert main(["enhance", str(clip), "-o", str(tmp_path / "o.mp4"), "--weights", str(unsafe), "-q"]) == 1
    line = one_error(capsys)
    assert "argparse.Namespace" in line and "refuses" in line
    assert "weights_only" not in line and "trust" not in line
    junk = tmp_path / "junk.pt"
    junk.write_bytes(bytes(range(256)) * 4)
    assert main(["weights", str(junk)]) == 1
    assert "not a sagc checkpoint" in one_error(capsys)


def test_a_ctrl_c_while_the_libraries_load_is_held_until_they_have():
    from sagc.cli import _deferred_interrupt

    reached = []
    with pytest.raises(KeyboardInterrupt):
        with _deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here: recorded, not raised
            reached.append(True)
    assert reached == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored

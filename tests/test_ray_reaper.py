"""A Ray cluster that ``sagc enhance --ray auto`` started ends with its driver, ``kill -9``
included. Its own module: no other cluster of the suite may be running (``--ray auto`` would
join that one instead of starting its own)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import wait_for_partial

pytest.importorskip("ray")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the reaper reads /proc (Linux)")
def test_a_local_cluster_ends_with_a_killed_driver(long_clip: Path, tmp_path: Path) -> None:
    """kill -9 of ``sagc enhance --ray auto`` leaves none of the cluster it started running."""
    from sagc.stream.apps.reaper import descendants

    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    driver = subprocess.Popen(
        [sys.executable, "-m", "sagc", "enhance", str(long_clip), "-o", str(out), "--ray", "auto", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_for_partial(out / "long.mp4", timeout=120)  # the cluster is up and a worker writes
        cluster = descendants(driver.pid)
        assert len(cluster) >= 3  # Ray's own processes and the worker
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(pid) for pid in cluster):
            time.sleep(0.2)
        left = [pid for pid in cluster if _alive(pid)]
        assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in left if _alive(pid)]
    finally:
        driver.kill()

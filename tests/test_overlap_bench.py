"""tools/overlap_bench.py on a tiny clip: both stage modes and the pass-through transcoded, every
ratio filled; both live."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .conftest import make_clip

ROOT = Path(__file__).resolve().parents[1]


def test_times_both_modes_against_the_pass_through(tmp_path, caplog):
    sys.path.insert(0, str(ROOT / "tools"))
    from overlap_bench import main

    clip = make_clip(tmp_path / "dark.mp4", size=(160, 96), frames=12, brightness=0.25)
    with caplog.at_level("INFO", logger="overlap_bench"):
        ratios = main([str(clip), "--frames", "12", "--runs", "2"])
    assert set(ratios) == {"in step", "overlap"}
    assert all(len(values) == 2 and all(0.0 < v < 10.0 for v in values) for values in ratios.values())
    assert "median" in caplog.text
    live = main([str(clip), "--frames", "10", "--runs", "1", "--live"])  # paced at the clip's 24 frames/s
    assert set(live) == {"in step", "overlap"} and all(0.0 < v[0] < 1000.0 for v in live.values())
    with pytest.raises(SystemExit):
        main([])  # neither a file nor --synthetic

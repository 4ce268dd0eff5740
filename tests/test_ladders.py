"""Exposure ladders (sagc.eval.ladders): scenes recovered from numbered files in any exposure,
and each scene's darkest capture paired with its normal exposure."""

from __future__ import annotations

import numpy as np

from sagc.eval.ladders import ladder_pairs, scenes
from sagc.stream.media.frame import Frame
from sagc.stream.media.images import write_image

EXPOSURES = (0.12, 0.3, 1.0, 1.5, 2.2)  # times a scene whose mean luma is about 0.45


def _scene(seed: int) -> np.ndarray:
    """A 96×96 picture of 8×8 blocks with mean near 0.45: a different layout per seed."""
    blocks = np.random.default_rng(seed).uniform(0.1, 0.8, (12, 12, 3))
    return blocks.repeat(8, 0).repeat(8, 1)


def test_scenes_are_recovered_in_natural_order_and_paired_dark_with_normal(tmp_path):
    names = iter(range(1, 100))
    expected = []
    for seed in range(3):
        scene = _scene(seed)
        files = []
        for exposure in EXPOSURES:
            path = tmp_path / f"{next(names)}.png"  # 1 … 15: by name, 10 would sort before 2
            write_image(path, Frame(np.clip(scene * exposure * 255, 0, 255).round().astype(np.uint8)))
            files.append(path.name)
        expected.append(files)
    write_image(tmp_path / "16.png", Frame(np.full((96, 96, 3), 40, np.uint8)))  # a scene of one image
    found = scenes(sorted(tmp_path.iterdir()))
    assert [[e.path.name for e in group] for group in found] == [*expected, ["16.png"]]
    pairs = ladder_pairs(found)
    assert [(dark.path.name, normal.path.name) for dark, normal in pairs] == [(f[0], f[2]) for f in expected]
    for dark, normal in pairs:
        assert 0.02 <= dark.luma <= 0.12 and abs(normal.luma - 0.45) < 0.05
    # a scene without an exposure in the dark range gives no pair
    assert ladder_pairs(found, dark=(0.001, 0.01)) == []

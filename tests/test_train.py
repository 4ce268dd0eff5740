"""Trainers on tiny generated data: checkpoints, bit-exact resume, torchrun, data sets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torchvision.models import mobilenet_v2

from sagc.core.config import load_config
from sagc.core.errors import SagcError
from sagc.core.synth import darken, sample_darken_params
from sagc.models import load_checkpoint, load_enhancer
from sagc.models.segprior import SegPrior, save_segprior
from sagc.train.config import EnhancerConfig, EnhancerData, SegConfig
from sagc.train.data import CamVidSegmentation, SyntheticLowLight, UnpairedImages, sample_generator, shrink_short_side
from sagc.train.enhancer import train_enhancer
from sagc.train.seg import train_segprior

ROOT = Path(__file__).resolve().parents[1]


def _folder(path: Path, count: int, *, level: float, size=(48, 64), seed=0) -> Path:
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        image = np.clip(rng.random((*size, 3)) * level * 255 + rng.random(3) * 40, 0, 255).astype(np.uint8)
        cv2.imwrite(str(path / f"{i:03d}.png"), image)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    torch.manual_seed(0)
    prior = save_segprior(root / "prior.pt", SegPrior(num_classes=11, aspp_channels=16).eval(), half=False)
    return {
        "normal": _folder(root / "normal", 6, level=0.9),
        "low": _folder(root / "low", 6, level=0.15, seed=1),
        "val": _folder(root / "val", 2, level=0.8, seed=2),
        "prior": prior,
    }


def _config(tiny, **overrides) -> EnhancerConfig:
    values = [
        "steps=4",
        "batch_size=2",
        "crop=32",
        "checkpoint_every=1",
        "train_scales=[1, 2]",
        "runtime.scale=2",
        f"prior={tiny['prior']}",
        "warmup_steps=1",
    ] + [f"{k}={v}" for k, v in overrides.items()]
    return load_config(EnhancerConfig, ROOT / "configs" / "sagc_default.yaml", values)


def _data(tiny) -> EnhancerData:
    return EnhancerData(
        normal=[str(tiny["normal"])], low=[str(tiny["low"])], synthetic_low=[str(tiny["normal"])], val=str(tiny["val"])
    )


def test_short_run_writes_loadable_checkpoints(tiny, tmp_path):
    result = train_enhancer(_config(tiny, steps=3), _data(tiny), out=tmp_path)
    assert result["steps"] == 3
    for name in ("last.pt", "best.pt", "final.pt", "config.yaml"):
        assert (tmp_path / name).exists(), name
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["provenance"]["trainer"] == "sagc train enhancer"
    assert {"dark_camvid_val", "night_camvid_val"} <= set(best["provenance"]["metrics"])
    enhancer = load_enhancer(tmp_path / "best.pt")
    assert enhancer.scale == 2.0
    assert enhancer.denoise == 7.0  # the shipped config's run-time noise reduction travels along
    assert enhancer.gate is not None  # and its exposure gate
    assert enhancer.guide == 0.5  # and its guided upsampling
    assert list((tmp_path / "tb").iterdir())


def test_resume_is_bit_exact(tiny, tmp_path):
    # with the adversarial term and the weight average on, so the critic, its optimiser and the
    # average are part of the state too
    options = {"adversarial": "true", "ema": 0.5, "context": 4, "reference_momentum": 0.9, "weights.exposure": 5}
    straight = tmp_path / "straight"
    train_enhancer(_config(tiny, **options), _data(tiny), out=straight)
    split = tmp_path / "split"
    stopped = train_enhancer(_config(tiny, stop_at=2, **options), _data(tiny), out=split)
    assert stopped["stopped"] and stopped["steps"] == 2
    train_enhancer(_config(tiny, **options), _data(tiny), out=split, resume=True)
    a = torch.load(straight / "final.pt", weights_only=True)["state_dict"]
    b = torch.load(split / "final.pt", weights_only=True)["state_dict"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    sa = torch.load(straight / "last.pt", weights_only=True)
    sb = torch.load(split / "last.pt", weights_only=True)
    for part in ("critic", "ema", "reference"):
        for key in sa[part]:
            assert torch.equal(sa[part][key], sb[part][key]), (part, key)


def test_weight_average_is_what_gets_validated_and_saved(tiny, tmp_path):
    train_enhancer(_config(tiny, steps=3, ema=0.5, context=4), _data(tiny), out=tmp_path)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    final = load_checkpoint(tmp_path / "final.pt")
    assert final["arch"] == {"width": 32, "context": 4}
    for key, value in final["state_dict"].items():
        assert torch.equal(value, state["ema"][f"module.{key}"]), key
    # after 3 steps with decay 0.5 the average lags the trained weights
    assert any(not torch.equal(final["state_dict"][k], state["estimator"][k]) for k in final["state_dict"])
    assert int(state["ema"]["n_averaged"]) == 3


def test_weight_average_decay_out_of_range_is_a_clear_error(tiny, tmp_path):
    with pytest.raises(SagcError, match="ema must be"):
        train_enhancer(_config(tiny, steps=1, ema=1.5), _data(tiny), out=tmp_path)


def test_bad_run_time_setting_is_a_clear_error_before_training(tiny, tmp_path):
    with pytest.raises(SagcError, match="config.runtime: denoise must be a finite number"):
        train_enhancer(_config(tiny, **{"runtime.denoise": -1}), _data(tiny), out=tmp_path)
    with pytest.raises(SagcError, match="config: train_guide must be a finite number in"):
        train_enhancer(_config(tiny, train_guide=2), _data(tiny), out=tmp_path)
    assert not (tmp_path / "last.pt").exists()


def test_ablation_switches_run(tiny, tmp_path):
    plain = train_enhancer(_config(tiny, steps=2, semantics="false"), _data(tiny), out=tmp_path / "a")
    no_adv = train_enhancer(_config(tiny, steps=2, adversarial="false"), _data(tiny), out=tmp_path / "b")
    guided = train_enhancer(_config(tiny, steps=2, train_guide=0.5), _data(tiny), out=tmp_path / "c")
    assert plain["steps"] == no_adv["steps"] == guided["steps"] == 2
    # the losses saw the guided upsampling: different weights from the same seed
    a = torch.load(tmp_path / "c" / "last.pt", weights_only=True)["estimator"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["estimator"]
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert torch.load(tmp_path / "a" / "last.pt", weights_only=True)["critic"] is None


def test_missing_prior_is_a_clear_error(tiny, tmp_path):
    with pytest.raises(SagcError, match="semantic prior"):
        train_enhancer(_config(tiny, prior=str(tmp_path / "none.pt")), _data(tiny), out=tmp_path)


def test_torchrun_two_cpu_ranks_hold_identical_weights(tiny, tmp_path):
    args = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "sagc.train", "enhancer",
        "--config", str(ROOT / "configs" / "sagc_default.yaml"),
        "--normal", str(tiny["normal"]), "--low", str(tiny["low"]), "--out", str(tmp_path),
        "--set", "steps=3", "--set", "batch_size=4", "--set", "crop=32", "--set", f"prior={tiny['prior']}",
        "--set", "train_scales=[1]", "--set", "adversarial=true",  # the critic's gradients are all-reduced too
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "all 2 ranks hold identical weights: True" in result.stdout
    assert (tmp_path / "final.pt").exists()


def test_unpaired_sets_are_deterministic_and_filter_by_luminance(tiny):
    low = UnpairedImages([tiny["low"], tiny["normal"]], crop=32, max_luminance=0.3)
    assert len(low) == 6  # the bright folder is filtered out
    low.set_epoch(3)
    torch.testing.assert_close(low[1], low[1], rtol=0, atol=0)
    synthetic = SyntheticLowLight([tiny["normal"]], crop=32)
    assert synthetic[0].mean() < UnpairedImages([tiny["normal"]], crop=32)[0].mean()
    band = UnpairedImages([tiny["low"], tiny["normal"]], crop=32, min_luminance=0.3)
    assert len(band) == 6 and all(float(image.mean()) > 0.3 for image in band.images)  # the dark folder is out
    with pytest.raises(SagcError, match="no usable images"):
        UnpairedImages([tiny["low"], tiny["normal"]], crop=32, min_luminance=0.3, max_luminance=0.31)
    with pytest.raises(SagcError, match="normal_luminance"):
        _config(tiny, normal_luminance="[0.6, 0.2]")


def test_night_fraction_darkens_that_share_of_synthetic_samples_to_night_level(tiny):
    dusk = SyntheticLowLight([tiny["normal"]], crop=32)
    night = SyntheticLowLight([tiny["normal"]], crop=32, night_fraction=1.0)
    means = [[float(s[i].mean()) for i in range(len(s))] for s in (dusk, night)]
    assert max(means[1]) < min(means[0])  # every night sample below every dusk one
    with pytest.raises(SagcError, match="night_fraction"):
        SyntheticLowLight([tiny["normal"]], crop=32, night_fraction=1.5)


def test_twins_are_one_crop_darkened_by_two_independent_draws(tiny):
    single = SyntheticLowLight([tiny["normal"]], crop=32, night_fraction=0.5)
    twins = SyntheticLowLight([tiny["normal"]], crop=32, night_fraction=0.5, twins=True)
    pairs = [twins[i] for i in range(len(twins))]
    assert all(pair.shape == (2, 3, 32, 32) for pair in pairs)
    # the first of each pair is the sample the set makes without twins
    assert all(torch.equal(pair[0], single[i]) for i, pair in enumerate(pairs))
    # the second is another exposure of the same crop: brighter or darker, same structure
    ratios = [float(pair[1].mean() / pair[0].mean()) for pair in pairs]
    assert max(abs(r - 1) for r in ratios) > 0.2
    for pair in pairs:
        a, b = ((pair[k].mean(0) - pair[k].mean()).flatten() for k in (0, 1))
        assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.5


def test_the_invariance_term_pairs_twins_in_training(tiny, tmp_path):
    data = EnhancerData(normal=[str(tiny["normal"])], synthetic_low=[str(tiny["normal"])])
    seen: list[dict[str, float]] = []
    train_enhancer(
        _config(tiny, steps=2, **{"weights.invariance": 5, "night_fraction": 0.5}),
        data,
        out=tmp_path,
        progress=lambda step, total, values: seen.append(values),
    )
    assert len(seen) == 2 and all(values["invariance"] > 0 for values in seen)
    # off: no twins are made and no term is reported
    seen.clear()
    train_enhancer(_config(tiny, steps=1), data, out=tmp_path / "off", progress=lambda s, t, v: seen.append(v))
    assert "invariance" not in seen[0]


def test_synthetic_low_light_is_darkened_before_it_is_shrunk(tmp_path):
    # a flat grey 256×256 picture: all the spread of a darkened crop is sensor noise
    folder = tmp_path / "flat"
    folder.mkdir()
    cv2.imwrite(str(folder / "grey.png"), np.full((256, 256, 3), 160, np.uint8))
    synthetic = SyntheticLowLight([folder], crop=64, resize_to=64, seed=5)
    assert synthetic.images[0].shape[-2:] == (256, 256)  # kept at full size until darkened
    crop = synthetic[0]
    assert crop.shape == (3, 64, 64)
    # the same draw applied to the already-shrunk picture: its noise is not averaged away
    g = sample_generator(synthetic.seed + 1, 0, 0)
    shrunk_first = darken(shrink_short_side(synthetic.images[0], 64), sample_darken_params(g), generator=g)
    noise, noise_shrunk_first = crop.std((1, 2)).mean(), shrunk_first.std((1, 2)).mean()
    assert noise_shrunk_first > 0.01
    assert noise < 0.5 * noise_shrunk_first
    assert abs(float(crop.mean() - shrunk_first.mean())) < 0.02


def _camvid(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 2)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for i in range(count):
            cv2.imwrite(str(root / split / "images" / f"f{i}.png"), (rng.random((48, 64, 3)) * 255).astype(np.uint8))
            cv2.imwrite(str(root / split / "labels" / f"f{i}.png"), rng.integers(0, 12, (48, 64)).astype(np.uint8))
    return root


def test_camvid_dataset_and_seg_training_resume(tmp_path):
    data = _camvid(tmp_path / "camvid")
    dataset = CamVidSegmentation(data / "train", train=True, crop=(32, 40))
    image, label = dataset[0]
    assert image.shape == (3, 32, 40) and label.shape == (32, 40) and label.max() <= 11
    backbone = tmp_path / "mobilenet_v2.pth"
    torch.manual_seed(0)
    torch.save(mobilenet_v2(weights=None).state_dict(), backbone)
    base = ["epochs=2", "batch_size=2", "crop=[32, 40]", "aspp_channels=16", "checkpoint_every=1", "val_every=1"]
    config = load_config(SegConfig, ROOT / "configs" / "seg_camvid.yaml", base)
    straight = train_segprior(config, data=data, out=tmp_path / "a", backbone=str(backbone))
    assert straight["steps"] == 4 and 0 <= straight["best_miou"] <= 1
    split = load_config(SegConfig, ROOT / "configs" / "seg_camvid.yaml", base + ["stop_at=1"])
    train_segprior(split, data=data, out=tmp_path / "b", backbone=str(backbone))
    train_segprior(config, data=data, out=tmp_path / "b", backbone=str(backbone), resume=True)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

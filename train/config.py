"""The trainers' configurations: dataclasses loaded from YAML (``configs/``), saved beside every
checkpoint, overridable with ``--set key=value``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from sagc.core.checks import check_number
from sagc.models import RuntimeSettings

__all__ = ["EnhancerConfig", "EnhancerData", "LossWeights", "SegConfig"]


@dataclass
class LossWeights:
    """Weight of each loss term (SAGC's reference values; adversarial chosen here)."""

    bright: float = 20.0
    color: float = 10.0
    smooth: float = 3.0
    flip: float = 0.5
    recon: float = 1.0
    adversarial: float = 0.05
    contrast: float = 0.0  # ours, off by default: per-class luminance spread vs. normal light
    exposure: float = 0.0  # ours, off by default: sorted image exposures vs. normal light's quantiles
    # ours, off by default: two darkenings of one picture enhanced alike (synthetic low light only)
    invariance: float = 0.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            check_number(f"weights.{name}", value, low=0.0, high=1e6, meaning="a loss weight; 0 turns it off")


_MAX_CROP = 4096  # pixels: far beyond any training crop, short of exhausting memory


def _check_whole(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")


def _check_schedule(config: EnhancerConfig | SegConfig) -> None:
    check_number("lr", config.lr, low=0.0, high=10.0, low_open=True, meaning="the learning rate")
    check_number("weight_decay", config.weight_decay, low=0.0, high=10.0)
    _check_whole("batch_size", config.batch_size, 1, 4096)
    _check_whole("warmup_steps", config.warmup_steps, 0, 10**9)
    _check_whole("checkpoint_every", config.checkpoint_every, 1, 10**9)
    _check_whole("stop_at", config.stop_at, 0, 10**9)


@dataclass
class EnhancerConfig:
    """Hyper-parameters of ``sagc train enhancer`` (``configs/sagc_default.yaml``)."""

    steps: int = 600
    batch_size: int = 8
    crop: int = 160
    resize_to: int = 0  # > 0: images are first resized so the short side is this (crops see more context)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    critic_lr: float = 1e-4
    gp_weight: float = 10.0
    width: int = 32
    context: int = 0  # > 0: channels of the deepest layer pooled image-wide (GammaEstimator)
    # the network sees frames normalised to their white point (sagc.ops.exposure)
    white_point: bool = False
    train_scales: tuple[float, ...] = (1.0, 2.0, 4.0)
    # the run-time settings saved into every checkpoint; validation scores the enhancer with
    # them, as users run it (noise reduction, exposure gate, guided upsampling, ...)
    runtime: RuntimeSettings = field(default_factory=lambda: RuntimeSettings(scale=4.0))
    # > 0: the losses see γ applied through the guided upsampling too (Enhancer.guide in training)
    train_guide: float = 0.0
    low_max_luminance: float = 0.25
    # normal-light images are kept only with a mean luma in this band (so a folder of mixed
    # exposures, such as SICE, gives its well-exposed pictures); (0, 1) keeps every image
    normal_luminance: tuple[float, float] = (0.0, 1.0)
    # share of the synthetic low-light samples darkened at night level (core.synth.NIGHT_LIGHT)
    # instead of the ISSR recipe's dusk range; 0 keeps every sample at dusk
    night_fraction: float = 0.0
    semantics: bool = True
    adversarial: bool = True
    # ours: the brightness term matches class means relative to the image mean (exposure left
    # to weights.exposure)
    relative_brightness: bool = False
    # > 0: normal-light targets are running sums over past batches (this momentum) instead of
    # the current batch alone (ours; much less noisy)
    reference_momentum: float = 0.0
    weights: LossWeights = field(default_factory=LossWeights)
    prior: str = "segprior_camvid"
    checkpoint_every: int = 50
    stop_at: int = 0  # > 0: checkpoint and stop after this step (continue later with --resume)
    image_every: int = 250
    seed: int = 0
    device: str = "cpu"
    amp: bool = True
    compile: bool = False
    # > 0: validate, keep and ship an exponential moving average of the weights (decay per step)
    ema: float = 0.0

    def __post_init__(self) -> None:
        _check_schedule(self)
        _check_whole("steps", self.steps, 1, 10**9)
        _check_whole("crop", self.crop, 16, _MAX_CROP)
        _check_whole("resize_to", self.resize_to, 0, _MAX_CROP)
        if self.resize_to and self.crop > self.resize_to:
            raise ValueError(
                f"crop ({self.crop}) must not exceed resize_to ({self.resize_to}), the short side it crops from"
            )
        _check_whole("image_every", self.image_every, 1, 10**9)
        check_number("critic_lr", self.critic_lr, low=0.0, high=10.0, low_open=True)
        check_number("gp_weight", self.gp_weight, low=0.0, high=1e6)
        check_number("train_guide", self.train_guide, low=0.0, high=1.0, meaning="0 is off")
        check_number("low_max_luminance", self.low_max_luminance, low=0.0, high=1.0)
        check_number("night_fraction", self.night_fraction, low=0.0, high=1.0)
        if len(self.normal_luminance) != 2:
            raise ValueError(f"normal_luminance must be [LOW, HIGH], got {list(self.normal_luminance)}")
        check_number("normal_luminance", self.normal_luminance[0], low=0.0, high=1.0)
        check_number("normal_luminance", self.normal_luminance[1], low=self.normal_luminance[0], high=1.0)
        check_number("reference_momentum", self.reference_momentum, low=0.0, high=1.0, high_open=True)
        check_number("ema", self.ema, low=0.0, high=1.0, high_open=True, meaning="0 is off")
        if not self.train_scales:
            raise ValueError("train_scales needs at least one scale")
        for scale in self.train_scales:
            check_number("train_scales", scale, low=1.0, high=64.0)


@dataclass
class EnhancerData:
    """Where the images come from (paths are CLI arguments, not config)."""

    normal: Sequence[str]
    low: Sequence[str] = ()
    synthetic_low: Sequence[str] = ()
    val: str | None = None


@dataclass
class SegConfig:
    """Hyper-parameters of the prior's training (``configs/seg_camvid.yaml``)."""

    epochs: int = 40
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    crop: tuple[int, int] = (256, 320)
    scales: tuple[float, float] = (0.6, 1.4)
    brightness: float = 0.4
    contrast: float = 0.3
    gamma: tuple[float, float] = (0.6, 2.0)
    darken_prob: float = 0.3
    class_weighting: Literal["none", "enet"] = "enet"
    aspp_channels: int = 128
    val_every: int = 5
    checkpoint_every: int = 50
    seed: int = 0
    max_steps: int = 0  # > 0: a shorter run (the schedule ends there)
    stop_at: int = 0  # > 0: checkpoint and stop after this step (continue later with --resume)

    def __post_init__(self) -> None:
        _check_schedule(self)
        _check_whole("epochs", self.epochs, 1, 10**6)
        for side in self.crop:
            _check_whole("crop", side, 16, _MAX_CROP)
        low, high = self.scales
        check_number("scales", low, low=0.05, high=16.0)
        check_number("scales", high, low=low, high=16.0)
        check_number("darken_prob", self.darken_prob, low=0.0, high=1.0)
        _check_whole("aspp_channels", self.aspp_channels, 1, 4096)
        _check_whole("val_every", self.val_every, 1, 10**6)
        _check_whole("max_steps", self.max_steps, 0, 10**9)

"""The trainers' configurations: dataclasses loaded from YAML (``configs/``), saved beside every
checkpoint, overridable with ``--set key=value``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

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
    train_scales: tuple[float, ...] = (1.0, 2.0, 4.0)
    # the run-time settings saved into every checkpoint; validation scores the enhancer with
    # them, as users run it (noise reduction, exposure gate, guided upsampling, ...)
    runtime: RuntimeSettings = field(default_factory=lambda: RuntimeSettings(scale=4.0))
    # > 0: the losses see γ applied through the guided upsampling too (Enhancer.guide in training)
    train_guide: float = 0.0
    low_max_luminance: float = 0.25
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

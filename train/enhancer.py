"""Train the SAGC enhancer without paired data, guided by the frozen semantic prior.

Reads top to bottom: config → data (normal-light, real and synthetic low-light) → models
(estimator, frozen prior, critic) → step (enhancer losses, then the critic) → checkpoint every
N steps (exact ``--resume``) → validation on Dark-CamVid-val each epoch → ``best.pt``.
Runs data-parallel under torchrun (gloo on CPU, nccl on CUDA).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from sagc.core.config import config_to_dict, save_config
from sagc.core.errors import SagcError
from sagc.core.synth import darken_sequence
from sagc.eval.metrics import psnr, ssim
from sagc.models import Enhancer, GammaEstimator, RuntimeSettings, save_enhancer
from sagc.models.critic import SegCritic
from sagc.models.segprior import SegPrior, load_segprior
from sagc.stream.images import list_images

from . import losses
from .data import SyntheticLowLight, UnpairedImages, load_rgb
from .distributed import (
    DistInfo,
    average_gradients,
    barrier,
    init_distributed,
    replicas_identical,
    shutdown_distributed,
)
from .state import capture_rng, epoch_order, load_state, restore_rng, run_provenance, save_state, seed_everything
from .tensorboard import SummaryLogger

__all__ = ["LossWeights", "EnhancerConfig", "EnhancerData", "train_enhancer", "validate", "dark_camvid"]

log = logging.getLogger(__name__)


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


def dark_camvid(folder: str | Path, *, seed: int = 0) -> tuple[list[Tensor], list[Tensor]]:
    """(darkened, original) images of a folder, sorted by name: Dark-CamVid-val for CamVid val."""
    originals = [load_rgb(p) for p in list_images(folder)]
    if not originals:
        raise SagcError(f"no validation images in {folder}")
    return list(darken_sequence(originals, seed=seed)), originals


IDENTITY_CAP = 100.0  # dB an unchanged image counts for in the mean identity PSNR


@torch.inference_mode()
def validate(enhancer: Enhancer, dark: Sequence[Tensor], clean: Sequence[Tensor]) -> dict[str, float]:
    """Mean PSNR/SSIM of enhanced dark images, and PSNR of enhanced clean images vs. themselves:
    the mean (an unchanged image counts as ``IDENTITY_CAP`` dB, not ∞) and the worst."""
    device = next(enhancer.parameters()).device
    scores: dict[str, list[float]] = {"psnr": [], "ssim": [], "input_psnr": [], "identity_psnr": []}
    for low, ref in zip(dark, clean, strict=True):
        low, ref = low[None].to(device), ref[None].to(device)
        out = enhancer(low)
        scores["psnr"].append(float(psnr(out, ref)))
        scores["ssim"].append(float(ssim(out, ref)))
        scores["input_psnr"].append(float(psnr(low, ref)))
        scores["identity_psnr"].append(min(IDENTITY_CAP, float(psnr(enhancer(ref), ref))))
    means = {k: sum(v) / len(v) for k, v in scores.items()}
    return {**means, "identity_min_psnr": min(scores["identity_psnr"])}


class _Batches:
    """Per-rank batches of low-light and normal-light crops, a pure function of the step."""

    def __init__(
        self, low: torch.utils.data.Dataset, normal: torch.utils.data.Dataset, config: EnhancerConfig, dist: DistInfo
    ):
        self.low, self.normal, self.config, self.dist = low, normal, config, dist
        self.steps_per_epoch = max(1, len(low) // config.batch_size)

    def __call__(self, step: int) -> tuple[Tensor, Tensor]:
        epoch, index = divmod(step, self.steps_per_epoch)
        size = self.config.batch_size
        low_order = epoch_order(len(self.low), seed=self.config.seed, epoch=epoch)
        normal_order = epoch_order(len(self.normal), seed=self.config.seed + 7, epoch=epoch)
        ids = [low_order[(index * size + i) % len(low_order)] for i in range(size)]
        ref = [normal_order[(index * size + i) % len(normal_order)] for i in range(size)]
        ids, ref = ids[self.dist.rank :: self.dist.world], ref[self.dist.rank :: self.dist.world]
        self.low.set_epoch(epoch)
        self.normal.set_epoch(epoch)
        device = self.dist.device
        low = torch.stack([self.low[i] for i in ids]).to(device)
        normal = torch.stack([self.normal[i] for i in ref]).to(device)
        return low, normal


class _LowLight(torch.utils.data.ConcatDataset):
    def set_epoch(self, epoch: int) -> None:
        for dataset in self.datasets:
            dataset.set_epoch(epoch)


def _datasets(data: EnhancerData, config: EnhancerConfig) -> tuple[_LowLight, UnpairedImages]:
    parts: list[UnpairedImages] = []
    if data.low:
        parts.append(
            UnpairedImages(
                data.low,
                crop=config.crop,
                max_luminance=config.low_max_luminance,
                resize_to=config.resize_to or 360,
                seed=config.seed,
            )
        )
    if data.synthetic_low:
        parts.append(
            SyntheticLowLight(
                data.synthetic_low, crop=config.crop, resize_to=config.resize_to or None, seed=config.seed + 1
            )
        )
    if not parts:
        raise SagcError("give low-light images: --low FOLDER and/or --synthetic-low FOLDER")
    normal = UnpairedImages(data.normal, crop=config.crop, resize_to=config.resize_to or None, seed=config.seed + 2)
    return _LowLight(parts), normal


def _load_prior(name: str) -> SegPrior:
    try:
        return load_segprior(name)
    except SagcError as exc:
        raise SagcError(
            f"semantic prior {name!r} unavailable ({exc}); train one with `sagc train seg --data CAMVID` "
            "and pass --set prior=runs/seg/best.pt, or --set semantics=false"
        ) from exc


def _soft_masks(prior: SegPrior | None, images: Tensor) -> Tensor:
    if prior is None:  # semantics switched off: one global class
        return images.new_ones(images.shape[0], 1, *images.shape[-2:])
    return torch.softmax(prior(images.contiguous(memory_format=torch.channels_last)), dim=1)


def _schedule(config: EnhancerConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def train_enhancer(
    config: EnhancerConfig,
    data: EnhancerData,
    *,
    out: str | Path,
    resume: bool = False,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train, validate each epoch, keep ``out/best.pt``; returns the best validation scores."""
    out = Path(out)
    dist = init_distributed(torch.device(config.device))
    try:
        return _train(config, data, out, dist, resume, progress)
    finally:
        shutdown_distributed(dist)


def _train(
    config: EnhancerConfig,
    data: EnhancerData,
    out: Path,
    dist: DistInfo,
    resume: bool,
    progress: Callable[[int, int, dict[str, float]], None] | None,
) -> dict[str, Any]:
    device = dist.device
    if not 0.0 <= config.train_guide <= 1.0:
        raise SagcError(f"config: train_guide must be in [0, 1] (0 is off), got {config.train_guide}")
    seed_everything(config.seed)
    low_set, normal_set = _datasets(data, config)
    batches = _Batches(low_set, normal_set, config, dist)
    use_prior = config.semantics
    # channels_last: depthwise and strided convolutions run several times faster on CPU in it
    prior = _load_prior(config.prior).to(device, memory_format=torch.channels_last) if use_prior else None
    adversarial = config.adversarial and use_prior and config.weights.adversarial > 0
    estimator = GammaEstimator(width=config.width, context=config.context).to(device, memory_format=torch.channels_last)
    critic = SegCritic(num_classes=prior.num_classes).to(device) if adversarial else None
    trainable: nn.Module = estimator
    if dist.world > 1:
        trainable = DistributedDataParallel(estimator)
    enhancer = Enhancer(trainable, scale=1.0, gain=1.0, guide=config.train_guide)  # type: ignore[arg-type]
    optimizer = torch.optim.AdamW(estimator.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    critic_opt = (
        torch.optim.Adam(critic.parameters(), lr=config.critic_lr, betas=(0.5, 0.9)) if critic is not None else None
    )
    running = (
        losses.RunningReference(prior.num_classes if prior is not None else 1, momentum=config.reference_momentum).to(
            device
        )
        if config.reference_momentum > 0
        else None
    )
    averaged = _averaged(estimator, config.ema)
    kept = averaged.module if averaged is not None else estimator  # what is validated and saved
    amp = config.amp and device.type == "cuda"
    if config.compile:
        estimator.forward = torch.compile(estimator.forward)  # type: ignore[method-assign]

    step, best = 0, {"psnr": -math.inf}
    if resume:
        state = load_state(out / "last.pt")
        estimator.load_state_dict(state["estimator"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if critic is not None and state.get("critic") is not None:
            critic.load_state_dict(state["critic"])
            critic_opt.load_state_dict(state["critic_opt"])  # type: ignore[union-attr]
        if averaged is not None:
            averaged.load_state_dict(state["ema"])
        if running is not None:
            running.load_state_dict(state["reference"])
        step, best = state["step"], state["best"]
        restore_rng(state["rng"])
        log.info("resumed from %s at step %d", out / "last.pt", step)
    val = dark_camvid(data.val) if data.val and dist.is_main else None
    if dist.is_main:
        save_config(config, out / "config.yaml")
    logger = SummaryLogger(out / "tb", enabled=dist.is_main)
    weights = config.weights
    started = time.perf_counter()

    def checkpoint() -> None:
        if not dist.is_main:
            return
        save_state(
            out / "last.pt",
            {
                "estimator": estimator.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "critic": critic.state_dict() if critic is not None else None,
                "critic_opt": critic_opt.state_dict() if critic_opt is not None else None,
                "ema": averaged.state_dict() if averaged is not None else None,
                "reference": running.state_dict() if running is not None else None,
                "step": step,
                "best": best,
                "rng": capture_rng(),
                "config": config_to_dict(config),
            },
        )

    while step < config.steps:
        low, normal = batches(step)
        enhancer.settings = enhancer.settings.replace(scale=config.train_scales[step % len(config.train_scales)])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            terms, enhanced_masks, normal_masks = _enhancer_terms(
                enhancer,
                prior,
                critic,
                low,
                normal,
                adversarial,
                running=running,
                contrast=weights.contrast > 0,
                exposure=weights.exposure > 0,
                relative=config.relative_brightness,
            )
        total = sum(getattr(weights, name) * value for name, value in terms.items())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        scheduler.step()
        if averaged is not None:
            averaged.update_parameters(estimator)
        if critic is not None and critic_opt is not None:
            critic.requires_grad_(True)
            d_loss = losses.critic_loss(critic, normal_masks, enhanced_masks, gp_weight=config.gp_weight)
            critic_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            average_gradients(critic, dist)
            critic_opt.step()
            terms["critic"] = d_loss.detach()
        step += 1
        values = {k: v.item() for k, v in terms.items()} | {"total": total.item()}
        if dist.is_main:
            for name, value in values.items():
                logger.scalar(f"enhancer/{name}", value, step)
            if progress is not None:
                progress(step, config.steps, values)
        if step % config.checkpoint_every == 0:
            checkpoint()
        if dist.is_main and step % config.image_every == 0:
            logger.images("enhancer/low|enhanced", torch.cat([low[0], _last_enhanced(enhancer, low)], -1).cpu(), step)
        if step % batches.steps_per_epoch == 0 or step >= config.steps:
            if val is not None:
                best = _validate_and_keep(config, data, kept, val, step, best, out, logger, started)
            checkpoint()
            barrier(dist)
        if config.stop_at and step >= config.stop_at and step < config.steps:
            checkpoint()
            logger.close()
            return {"best": best, "steps": step, "stopped": True, "rank": dist.rank}
    logger.close()
    identical = replicas_identical(estimator, dist)
    if not identical:
        raise RuntimeError("data-parallel ranks ended with different weights")
    if dist.is_main:
        provenance = {"trainer": "sagc train enhancer", "config": config_to_dict(config), "step": step}
        save_enhancer(out / "final.pt", kept, config.runtime, provenance=provenance)
    return {
        "best": best,
        "steps": step,
        "final": str(out / "final.pt"),
        "rank": dist.rank,
        "world": dist.world,
        "replicas_identical": identical,
    }


def _averaged(estimator: GammaEstimator, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``estimator``'s weights, or None when ``decay`` is 0."""
    if decay == 0:
        return None
    if not 0 < decay < 1:
        raise SagcError(f"ema must be 0 (off) or a decay between 0 and 1, got {decay}")
    return AveragedModel(estimator, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _last_enhanced(enhancer: Enhancer, low: Tensor) -> Tensor:
    with torch.no_grad():
        return enhancer(low[:1])[0].float()


def _enhancer_terms(
    enhancer: Enhancer,
    prior: SegPrior | None,
    critic: nn.Module | None,
    low: Tensor,
    normal: Tensor,
    adversarial: bool,
    *,
    running: losses.RunningReference | None = None,
    contrast: bool = False,
    exposure: bool = False,
    relative: bool = False,
) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """The enhancer's loss terms for one batch, plus the class maps the critic trains on.

    Low, flipped-low and normal images go through the estimator as one batch: one forward
    pass per step, which DistributedDataParallel requires.
    """
    n = low.shape[0]
    x = enhancer.prepare(torch.cat([low, low.flip(-1), normal]).contiguous(memory_format=torch.channels_last))
    gamma_all = enhancer.estimate(x)
    out = enhancer.apply(x, gamma_all)
    enhanced, enhanced_flipped, enhanced_normal = out[:n], out[n : 2 * n], out[2 * n :]
    gamma = gamma_all[:n]
    with torch.no_grad():
        normal_masks = _soft_masks(prior, normal)
    if adversarial:
        enhanced_masks = _soft_masks(prior, enhanced)  # keeps the graph: the critic's gradient reaches E
    else:
        with torch.no_grad():
            enhanced_masks = _soft_masks(prior, enhanced)
    weights = enhanced_masks.detach()
    if running is not None:
        targets = running.update(normal, normal_masks)
    else:
        targets = losses.reference_targets(normal, normal_masks)
    terms = {
        "bright": losses.brightness_to(enhanced, weights, targets, relative=relative),
        "color": losses.color_to(enhanced, weights, targets),
        "smooth": losses.smoothness_loss(gamma, weights),
        "flip": losses.flip_loss(enhanced, enhanced_flipped),
        "recon": losses.reconstruction_loss(enhanced_normal, normal),
    }
    if exposure:
        terms["exposure"] = losses.exposure_to(enhanced, targets.exposures)
    if contrast:
        terms["contrast"] = losses.contrast_to(enhanced, weights, targets)
    if adversarial and critic is not None:
        critic.requires_grad_(False)
        terms["adversarial"] = losses.generator_loss(critic, enhanced_masks)
    return terms, enhanced_masks.detach(), normal_masks


def _runtime_enhancer(estimator: GammaEstimator, config: EnhancerConfig) -> Enhancer:
    """``estimator`` as users will run it, with the config's run-time settings."""
    return Enhancer(estimator, config.runtime)


def _validate_and_keep(
    config: EnhancerConfig,
    data: EnhancerData,
    estimator: GammaEstimator,
    val: tuple[list[Tensor], list[Tensor]],
    step: int,
    best: dict[str, float],
    out: Path,
    logger: SummaryLogger,
    started: float,
) -> dict[str, float]:
    was_training = estimator.training
    runtime = _runtime_enhancer(estimator, config).eval()
    scores = validate(runtime, *val)
    estimator.train(was_training)
    for name, value in scores.items():
        logger.scalar(f"val/{name}", value, step)
    log.info(
        "step %d: Dark-CamVid-val PSNR %.2f dB SSIM %.4f, well-exposed originals kept at %.2f dB",
        step,
        scores["psnr"],
        scores["ssim"],
        scores["identity_psnr"],
    )
    if scores["psnr"] <= best["psnr"]:
        return best
    provenance = {
        **run_provenance(),
        "trainer": "sagc train enhancer",
        "config": config_to_dict(config),
        "data": {
            "normal": list(data.normal),
            "low": list(data.low),
            "synthetic_low": list(data.synthetic_low),
            "val": data.val,
        },
        "step": step,
        "metrics": {"dark_camvid_val": {k: round(v, 4) for k, v in scores.items()}},
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    save_enhancer(out / "best.pt", estimator, config.runtime, provenance=provenance)
    return scores | {"step": step}

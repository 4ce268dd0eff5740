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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from sagc.core.config import config_to_dict, save_config
from sagc.core.errors import SagcError
from sagc.core.synth import NIGHT_LIGHT
from sagc.models import Enhancer, GammaEstimator, save_enhancer
from sagc.models.checkpoint import packaged_cue
from sagc.models.critic import SegCritic
from sagc.models.segprior import SegPrior, load_segprior

from . import losses
from .config import EnhancerConfig, EnhancerData
from .data import SyntheticLowLight, UnpairedImages
from .distributed import (
    DistInfo,
    average_gradients,
    barrier,
    init_distributed,
    replicas_identical,
    shutdown_distributed,
    training_device,
)
from .objective import enhancer_terms
from .state import epoch_order, resume_training, run_provenance, save_training, seed_everything
from .tensorboard import SummaryLogger
from .validation import dark_camvid, validate

__all__ = ["train_enhancer"]

log = logging.getLogger(__name__)


class _Batches:
    """Per-rank batches of low-light and normal-light crops, a pure function of the step."""

    def __init__(
        self, low: torch.utils.data.Dataset, normal: torch.utils.data.Dataset, config: EnhancerConfig, dist: DistInfo
    ):
        self.low, self.normal, self.config, self.dist = low, normal, config, dist
        self.steps_per_epoch = max(1, len(low) // config.batch_size)

    def __call__(self, step: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """Low-light crops, normal-light crops, and the second darkening of each low-light crop
        when the synthetic set makes twins (None otherwise)."""
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
        samples = [self.low[i] for i in ids]
        normal = torch.stack([self.normal[i] for i in ref]).to(device)
        if all(sample.ndim == 4 for sample in samples):  # twins: two darkenings of one crop
            pairs = torch.stack(samples).to(device)
            return pairs[:, 0], normal, pairs[:, 1]
        if any(sample.ndim == 4 for sample in samples):
            samples = [sample[0] if sample.ndim == 4 else sample for sample in samples]
        return torch.stack(samples).to(device), normal, None


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
                data.synthetic_low,
                crop=config.crop,
                resize_to=config.resize_to or None,
                seed=config.seed + 1,
                night_fraction=config.night_fraction,
                twins=config.weights.invariance > 0 and not data.low,
            )
        )
    if not parts:
        raise SagcError("give low-light images: --low FOLDER and/or --synthetic-low FOLDER")
    low_level, high_level = config.normal_luminance
    normal = UnpairedImages(
        data.normal,
        crop=config.crop,
        resize_to=config.resize_to or None,
        seed=config.seed + 2,
        min_luminance=low_level if low_level > 0 else None,
        max_luminance=high_level if high_level < 1 else None,
    )
    return _LowLight(parts), normal


def _load_prior(name: str) -> SegPrior:
    try:
        return load_segprior(name)
    except SagcError as exc:
        raise SagcError(
            f"semantic prior {name!r} unavailable ({exc}); train one with `sagc train seg --data CAMVID` "
            "and pass --set prior=runs/seg/best.pt, or --set semantics=false"
        ) from exc


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
    dist = init_distributed(training_device(config.device))
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
    seed_everything(config.seed)
    low_set, normal_set = _datasets(data, config)
    batches = _Batches(low_set, normal_set, config, dist)
    use_prior = config.semantics
    # channels_last: depthwise and strided convolutions run several times faster on CPU in it
    prior = _load_prior(config.prior).to(device, memory_format=torch.channels_last) if use_prior else None
    adversarial = config.adversarial and use_prior and config.weights.adversarial > 0
    estimator = GammaEstimator(width=config.width, context=config.context, white_point=config.white_point).to(
        device, memory_format=torch.channels_last
    )
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

    parts = {
        "estimator": estimator,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "critic": critic,
        "critic_opt": critic_opt,
        "ema": averaged,
        "reference": running,
    }
    step, best = 0, {"psnr": -math.inf}
    if resume:
        values = resume_training(out / "last.pt", parts)
        step, best = values["step"], values["best"]
        log.info("resumed from %s at step %d", out / "last.pt", step)
    val = None
    if data.val and dist.is_main:  # Dark- and Night-CamVid-val
        val = {"dark": dark_camvid(data.val), "night": dark_camvid(data.val, light=NIGHT_LIGHT)}
    if dist.is_main:
        save_config(config, out / "config.yaml")
    logger = SummaryLogger(out / "tb", enabled=dist.is_main)
    weights = config.weights
    started = time.perf_counter()

    def checkpoint() -> None:
        if dist.is_main:
            save_training(out / "last.pt", parts, step=step, best=best, config=config_to_dict(config))

    while step < config.steps:
        low, normal, twins = batches(step)
        enhancer.settings = enhancer.settings.replace(scale=config.train_scales[step % len(config.train_scales)])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            terms, enhanced_masks, normal_masks = enhancer_terms(
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
                twins=twins,
            )
        total = sum(getattr(weights, name) * value for name, value in terms.items())
        if not torch.isfinite(total):  # nothing is saved from here on: the last checkpoint stays good
            bad = ", ".join(name for name, value in terms.items() if not torch.isfinite(value)) or "the weighted sum"
            raise SagcError(
                f"the training loss is not finite at step {step + 1} ({bad}); lower lr or the loss weights "
                f"and resume from {out / 'last.pt'} if it exists"
            )
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
        provenance = {
            **run_provenance(),
            "trainer": "sagc train enhancer",
            "config": config_to_dict(config),
            "data": _data_provenance(data),
            "step": step,
        }
        save_enhancer(out / "final.pt", kept, config.runtime, provenance=provenance)
    return {
        "best": best,
        "steps": step,
        "final": str(out / "final.pt"),
        "rank": dist.rank,
        "world": dist.world,
        "replicas_identical": identical,
    }


def _data_provenance(data: EnhancerData) -> dict[str, Any]:
    return {
        "normal": list(data.normal),
        "low": list(data.low),
        "synthetic_low": list(data.synthetic_low),
        "val": data.val,
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


def _runtime_enhancer(estimator: GammaEstimator, config: EnhancerConfig) -> Enhancer:
    """``estimator`` as users will run it: the config's run-time settings, the packaged content cue."""
    cue = packaged_cue().to(next(estimator.parameters()).device)
    return Enhancer(estimator, config.runtime, content_cue=cue)


def _validate_and_keep(
    config: EnhancerConfig,
    data: EnhancerData,
    estimator: GammaEstimator,
    val: dict[str, tuple[list[Tensor], list[Tensor]]],
    step: int,
    best: dict[str, float],
    out: Path,
    logger: SummaryLogger,
    started: float,
) -> dict[str, float]:
    was_training = estimator.training
    runtime = _runtime_enhancer(estimator, config).eval()
    scores = validate(runtime, *val["dark"])
    night = validate(runtime, *val["night"], identity=False)
    estimator.train(was_training)
    for name, value in scores.items():
        logger.scalar(f"val/{name}", value, step)
    for name, value in night.items():
        logger.scalar(f"val_night/{name}", value, step)
    log.info(
        "step %d: Dark-CamVid-val PSNR %.2f dB SSIM %.4f, Night-CamVid-val %.2f dB / %.4f, "
        "well-exposed originals kept at %.2f dB",
        step,
        scores["psnr"],
        scores["ssim"],
        night["psnr"],
        night["ssim"],
        scores["identity_psnr"],
    )
    if scores["psnr"] <= best["psnr"]:
        return best
    provenance = {
        **run_provenance(),
        "trainer": "sagc train enhancer",
        "config": config_to_dict(config),
        "data": _data_provenance(data),
        "step": step,
        "metrics": {
            "dark_camvid_val": {k: round(v, 4) for k, v in scores.items()},
            "night_camvid_val": {k: round(v, 4) for k, v in night.items()},
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    save_enhancer(out / "best.pt", estimator, config.runtime, provenance=provenance)
    return scores | {"step": step}

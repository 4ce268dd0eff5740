"""The semantic prior: DeepLabV3+ (ASPP + low-level decoder) on a MobileNetV2 backbone.

Takes RGB in [0, 1] (ImageNet normalisation happens inside) and returns class logits at the
input size. Trained on CamVid's 11 classes by ``sagc train seg``; frozen while the enhancer
trains, but differentiable with respect to its input so semantic losses reach the enhancer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import mobilenet_v2

from .checkpoint import load_checkpoint, save_checkpoint

__all__ = ["SEGPRIOR_KIND", "SegPrior", "save_segprior", "load_segprior"]

SEGPRIOR_KIND = "sagc.segprior"
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_LOW_LEVEL_END = 4  # features[:4] → stride 4, 24 channels
_HIGH_LEVEL_END = 18  # features[4:18] → stride 16 (last stage dilated), 320 channels


def _conv_bn_relu(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _ASPP(nn.Module):
    """Atrous spatial pyramid pooling: parallel dilated convolutions plus image pooling."""

    def __init__(self, cin: int, cout: int, rates: tuple[int, ...] = (6, 12, 18)) -> None:
        super().__init__()
        self.branches = nn.ModuleList([_conv_bn_relu(cin, cout)] + [_conv_bn_relu(cin, cout, 3, r) for r in rates])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.ReLU())
        self.project = nn.Sequential(_conv_bn_relu(cout * (len(rates) + 2), cout), nn.Dropout(0.1))

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.pool(x).expand(-1, -1, x.shape[-2], x.shape[-1])
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))


def _dilate_last_stage(features: nn.Sequential) -> None:
    """Output stride 16: the stride-2 block of the last stage keeps resolution, dilation 2 after."""
    for index in range(14, _HIGH_LEVEL_END):
        for module in features[index].modules():
            if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
                if module.stride == (2, 2):
                    module.stride = (1, 1)
                else:
                    module.dilation, module.padding = (2, 2), (2, 2)


class SegPrior(nn.Module):
    """DeepLabV3+ with a MobileNetV2 backbone; ``forward`` returns N×C×H×W logits."""

    def __init__(self, *, num_classes: int = 11, aspp_channels: int = 128) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.aspp_channels = aspp_channels
        features = mobilenet_v2(weights=None).features
        _dilate_last_stage(features)
        self.low = features[:_LOW_LEVEL_END]
        self.high = features[_LOW_LEVEL_END:_HIGH_LEVEL_END]
        self.aspp = _ASPP(320, aspp_channels)
        self.reduce = _conv_bn_relu(24, 48)
        self.decoder = nn.Sequential(
            _conv_bn_relu(aspp_channels + 48, aspp_channels, 3),
            _conv_bn_relu(aspp_channels, aspp_channels, 3),
        )
        self.classifier = nn.Conv2d(aspp_channels, num_classes, 1)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def load_backbone(self, imagenet_state: Mapping[str, Tensor]) -> None:
        """Initialise the backbone from torchvision's ImageNet MobileNetV2 state dict."""
        wanted = {}
        for key, value in imagenet_state.items():
            if not key.startswith("features."):
                continue
            index = int(key.split(".")[1])
            rest = key.split(".", 2)[2]
            if index < _LOW_LEVEL_END:
                wanted[f"low.{index}.{rest}"] = value
            elif index < _HIGH_LEVEL_END:  # slicing a Sequential keeps the original indices
                wanted[f"high.{index}.{rest}"] = value
        own = {k for k in self.state_dict() if k.startswith(("low.", "high."))}
        missing = own - set(wanted)
        if missing:
            raise ValueError(f"backbone weights lack {len(missing)} tensors, e.g. {sorted(missing)[0]}")
        self.load_state_dict(wanted, strict=False)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        low = self.low(x)
        high = self.aspp(self.high(low))
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        logits = self.classifier(self.decoder(torch.cat([high, self.reduce(low)], dim=1)))
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def save_segprior(
    path: str | os.PathLike[str],
    model: SegPrior,
    *,
    provenance: Mapping[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Save ``model`` (optionally as float16 to halve the file; loading restores float32)."""
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    return save_checkpoint(
        path,
        kind=SEGPRIOR_KIND,
        arch={"num_classes": model.num_classes, "aspp_channels": model.aspp_channels},
        state_dict=state,
        provenance=provenance,
    )


def load_segprior(path_or_name: str | os.PathLike[str]) -> SegPrior:
    """Load a prior frozen: eval mode, no parameter requires grad, strict key match."""
    checkpoint = load_checkpoint(path_or_name, kind=SEGPRIOR_KIND)
    model = SegPrior(**checkpoint["arch"])
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in checkpoint["state_dict"].items()}
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)

"""LPIPS (AlexNet, v0.1) through the ``lpips`` package, with a backbone read from local disk.

The linear heads ship inside ``lpips``; the AlexNet ImageNet weights it would normally download
cannot be fetched here, so they come from a local file: ``--lpips-weights PATH`` (torchvision's
``alexnet-owt-7be5be79.pth`` or any AlexNet state dict), else torchvision's cache
(``$TORCH_HOME/hub/checkpoints/alexnet-owt-*.pth``). Nothing is downloaded.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from sagc.core.errors import SagcError

__all__ = ["Lpips", "find_alexnet_weights", "load_lpips"]

log = logging.getLogger(__name__)

_FEATURE_KEYS = ("features.0.", "features.3.", "features.6.", "features.8.", "features.10.")


def find_alexnet_weights(path: str | Path | None = None) -> Path | None:
    """The AlexNet state dict to use: ``path`` if given, else torchvision's cache, else ``None``."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise SagcError(f"LPIPS AlexNet weights {path} not found: pass torchvision's alexnet-owt-*.pth")
        return path
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    found = sorted(cache.glob("alexnet-owt-*.pth")) if cache.is_dir() else []
    return found[0] if found else None


def _read_alexnet(path: Path) -> dict[str, Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user mistake
        raise SagcError(f"{path} is not a readable torch state dict ({exc.__class__.__name__})") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(any(k.startswith(p) for k in state) for p in _FEATURE_KEYS):
        raise SagcError(f"{path} is not an AlexNet state dict (no features.0 … features.10 convolutions)")
    return state


class Lpips(nn.Module):
    """LPIPS distance of RGB images in [0, 1] (N×3×H×W each) → N values, lower is closer."""

    def __init__(self, alexnet_state: dict[str, Tensor]) -> None:
        super().__init__()
        try:
            import lpips
        except ImportError as exc:
            raise SagcError("LPIPS needs the lpips package: pip install -e '.[eval]'") from exc
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lpips passes torchvision's deprecated `pretrained=False`
            self.model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
        # lpips keeps AlexNet's feature layers under their torchvision indices, split in slices.
        features = {}
        for key, value in alexnet_state.items():
            if key.startswith("features."):
                index, name = key[len("features.") :].split(".", 1)
                features[(index, name)] = value
        for slice_module in (self.model.net.slice1, self.model.net.slice2, self.model.net.slice3,
                             self.model.net.slice4, self.model.net.slice5):  # fmt: skip
            for index, layer in slice_module.named_children():
                for name, param in layer.named_parameters(recurse=False):
                    param.data.copy_(features[(index, name)])
        self.model.eval().requires_grad_(False)

    @torch.inference_mode()
    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected two N×3×H×W images of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        param = next(self.model.parameters())
        x, y = x.to(param), y.to(param)
        return self.model(x, y, normalize=True).flatten().double()


def load_lpips(weights: str | Path | None = None, *, device: torch.device | str = "cpu") -> Lpips | None:
    """An :class:`Lpips` on ``device``, or ``None`` (with a one-line notice) without AlexNet weights."""
    path = find_alexnet_weights(weights)
    if path is None:
        log.warning(
            "LPIPS skipped: no AlexNet weights (pass --lpips-weights PATH to alexnet-owt-7be5be79.pth "
            "or put it in %s/checkpoints)",
            torch.hub.get_dir(),
        )
        return None
    return Lpips(_read_alexnet(path)).to(device)

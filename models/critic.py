"""The WGAN-GP critic that judges segmentation maps of enhanced vs. normal-light images."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["SegCritic"]


class SegCritic(nn.Module):
    """Strided convolutions over C-class probability maps → one score per image.

    No batch normalisation: the gradient penalty is defined per sample.
    """

    def __init__(self, *, num_classes: int, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = num_classes
        for out in (width, 2 * width, 4 * width, 4 * width):
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, maps: Tensor) -> Tensor:
        return self.net(maps).mean((1, 2, 3))

"""The content cue of the exposure decision: a small network that tells a frame darkened below its
normal exposure from a normally exposed one by what it shows, not by its brightness alone.

The exposure gate (:mod:`sagc.models.gate`) is a model of whole-frame brightness statistics.
Those cannot tell a bright scene darkened to dusk level (a street at mean luma 0.3 whose normal
level is 0.5) from daylight footage filmed at that level, which must be left as it is; both sit
between the gate's two classes. :class:`ContentCue` looks at the thumbnail itself (three strided
3×3 convolutions, their mean and maximum over the picture, one linear layer: 14,401 parameters),
trained on the same sets as the gate (:func:`sagc.train.cue.train_content_cue`). The two are two
pieces of evidence about one question, so the decision adds their log-odds, with the frame's
noise for its level where it was measured
(:meth:`~sagc.models.gate.ExposureGate.noise_evidence`)::

    p = σ(logit p_gate + max(0, logit p_cue) + e_noise),    w = max(w_gate, ramp(p))

with the gate's own ramp (:meth:`~sagc.models.gate.ExposureGate.weight_of`). A frame both call
likely under-exposed is enhanced even where neither is sure alone, and a cue that hesitates
(``p_cue`` near 0.5) leaves the gate's weight as it is. The cue only raises: its evidence that a
frame is under-exposed adds, its evidence that a frame is normal does not. The gate and the
noise line are fitted together (the line given the gate's log-odds); the cue, trained on the
frames of a few scenes, is surest on those scenes, and on a scene it has not seen its call of
"normal" does not hold (cross-fitted between CamVid sequences, its weight is near 0), where it
would cancel the noise's evidence. The cue acts only where the gate's own probability is at
least :data:`CUE_FLOOR` (the brightest, clearly well-exposed frames stay the gate's alone;
:meth:`ContentCue.weight`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sagc.ops.exposure import host_eager

__all__ = ["CUE_FLOOR", "CUE_KIND", "ContentCue"]

CUE_KIND = "sagc.content_cue"
CUE_FLOOR = 0.02  # the gate's probability below which the gate alone decides
_LOGIT_EPS = 1e-6  # probabilities are kept this far from 0 and 1 before their log-odds
CUE_SIDE = 45  # the shorter side of the thumbnails the cue is trained on (360-line frames at 1/8)


class ContentCue(nn.Module):
    """Probability that each N×3×h×w low-resolution RGB frame in [0, 1] is under-exposed, from
    its content; any size (the features are pooled over the whole picture)."""

    def __init__(self, *, width: int = 16) -> None:
        super().__init__()
        self.width = width
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(4 * width, 1)

    def forward(self, small: Tensor) -> Tensor:
        """Logits of shape N. A thumbnail whose shorter side holds :data:`CUE_SIDE` pixels two
        or more times over is first resized down by that whole factor (antialiased): the cue is
        trained on thumbnails of 360-line frames and reads texture at that scale (at 160×90, a
        720p frame's thumbnail, it called daylight frames dark). The size is computed, not
        branched on, so an exported graph resizes as the module does at every input size."""
        height, width = small.shape[-2:]
        factor = torch.sym_max(1, torch.sym_min(height, width) // CUE_SIDE)
        small = F.interpolate(
            small, size=(height // factor, width // factor), mode="bilinear", antialias=True, align_corners=False
        )
        h = self.features(small.to(self.head.weight.dtype))
        return self.head(torch.cat([h.mean((2, 3)), h.amax((2, 3))], dim=1))[:, 0]

    def probability(self, small: Tensor) -> Tensor:
        """Shape N (float32)."""
        return torch.sigmoid(self(small).float())

    def weight(
        self,
        small: Tensor,
        gate_probability: Tensor,
        *,
        weight_of: Callable[[Tensor], Tensor],
        evidence: Tensor | None = None,
    ) -> Tensor:
        """The decision's weight from the gate's probability and its ramp ``weight_of``
        (:meth:`~sagc.models.gate.ExposureGate.weight_of`): where the probability is at least
        :data:`CUE_FLOOR` and the gate's weight below 1, the larger of the gate's weight and the
        ramp of the combined probability ``σ(logit gate_probability + max(0, logit cue) +
        evidence)`` (``evidence``: further log-odds per frame, e.g. the gate's
        :meth:`~sagc.models.gate.ExposureGate.noise_evidence`); elsewhere the gate's weight. On
        the CPU outside export and autograd the network runs only where it can change the
        weight: not on a batch whose frames are all below the floor or already at weight 1 (deep
        night, bright day), the same result without the cue's cost."""
        gate_weight = weight_of(gate_probability)
        undecided = (gate_probability >= CUE_FLOOR) & (gate_weight < 1.0)
        if host_eager(small, gate_probability, gate_weight) and not bool(undecided.any()):
            return gate_weight
        p = gate_probability.float().clamp(_LOGIT_EPS, 1.0 - _LOGIT_EPS)
        logit = torch.log(p) - torch.log1p(-p) + self(small).float().clamp(min=0.0)
        combined = torch.sigmoid(logit if evidence is None else logit + evidence.float())
        raised = torch.maximum(gate_weight, weight_of(combined).to(gate_weight.dtype))
        return torch.where(undecided, raised, gate_weight)

"""What the video pipeline carries from frame to frame, built from the run-time settings."""

from __future__ import annotations

from dataclasses import dataclass

from sagc.models import RuntimeSettings
from sagc.ops.temporal_denoise import TemporalDenoiser
from sagc.stream.enhance.smoothing import ExposureTracker, GammaSmoother

__all__ = ["VideoState"]


@dataclass
class VideoState:
    """The γ smoothing (``smooth``; with the gate also at night, :mod:`~sagc.stream.enhance.smoothing`),
    the exposure tracking (``gate``) and the temporal noise reduction (``temporal_denoise``) of one
    stream of frames; None where the settings turn one off."""

    smoother: GammaSmoother | None = None
    exposure: ExposureTracker | None = None
    temporal_denoiser: TemporalDenoiser | None = None

    def follow(self, settings: RuntimeSettings, *, temporal: bool = True) -> None:
        """Match ``settings``, keeping the state of whatever they leave unchanged; ``temporal=False``
        (unrelated stills) turns everything off."""
        smooth = settings.smooth if temporal else 0.0
        if not (smooth > 0 or (temporal and settings.gate)):
            self.smoother = None
        elif self.smoother is None or self.smoother.alpha != smooth:
            self.smoother = GammaSmoother(smooth)
        if not (temporal and settings.gate):
            self.exposure = None
        elif self.exposure is None:
            self.exposure = ExposureTracker()
        strength = settings.temporal_denoise if temporal else 0.0
        if strength == 0.0:
            self.temporal_denoiser = None
        elif self.temporal_denoiser is None or self.temporal_denoiser.strength != strength:
            self.temporal_denoiser = TemporalDenoiser(strength)

    @property
    def active(self) -> bool:
        """True when anything carries over between frames."""
        return any(part is not None for part in (self.smoother, self.exposure, self.temporal_denoiser))

    def reset(self) -> None:
        """Forget the past (call between unrelated clips)."""
        for part in (self.smoother, self.exposure, self.temporal_denoiser):
            if part is not None:
                part.reset()

    def hooks(self) -> dict[str, object]:
        """Keyword arguments for :meth:`sagc.models.Enhancer.forward`."""
        return {"smoother": self.smoother, "exposure": self.exposure, "prefilter": self.temporal_denoiser}

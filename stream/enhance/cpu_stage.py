"""The CPU enhance stage: 8-bit frames with OpenCV in float32 buffers, others in floating point.

One step sequence whatever the layout: the thumbnail (``downscale``), γ (``estimate``: the
network on ONNX Runtime, the exposure decision, the smoothing, the guided curve's fit), the
temporal and spatial noise reduction, γ at full resolution (``upsample``) and the exponent
(``apply``). The layout (:mod:`sagc.stream.enhance.layouts`: RGB, or 4:2:0 planes) picks which
form of each :mod:`sagc.ops` algorithm a step runs. A frame the exposure gate leaves alone is
returned as it is after the estimate. In video a frame reuses the last estimate while the light
holds (:mod:`sagc.stream.enhance.reuse`). Frames that are not 8-bit take the reference stage's
floating-point path (:func:`~sagc.stream.enhance.reference.enhance_float`).

With :attr:`CpuStage.overlap` (live preview, where no encoder takes the second core) a video
frame that needs a fresh estimate runs it on a worker thread beside its own full-resolution work
and is itself enhanced with the last estimate, made from an earlier frame; the next frame waits
for the worker's result and uses it. The picture's γ is one frame late, the same whatever the
threads' timing (the output is deterministic). A frame estimates in place, as without
``overlap``, where a late estimate would be wrong: the first frame, a scene cut (luma histogram
beyond :data:`~sagc.ops.histogram.SCENE_CUT` of the estimate's), and after a frame the gate left
alone. In a transcode x264 keeps both cores busy and the estimate runs in step
(``tools/overlap_bench.py``: no faster there).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from sagc.core.heap import keep_frame_buffers_in_heap
from sagc.core.timing import step
from sagc.models import Enhancer, RuntimeSettings
from sagc.ops.black import Levels
from sagc.ops.estimator import OrtEstimator
from sagc.ops.guide import Curve
from sagc.ops.histogram import SCENE_CUT, histogram_l1, luma_histogram_8bit
from sagc.stream.enhance.layouts import Layout, PlanarLayout, RgbLayout
from sagc.stream.enhance.reference import enhance_float
from sagc.stream.enhance.reuse import Estimate, NetworkEstimate, network_reusable, reusable
from sagc.stream.enhance.stage import Done, Stage
from sagc.stream.media.frame import Frame

__all__ = ["CpuStage"]


class CpuStage(Stage):
    """The :class:`~sagc.stream.enhance.stage.Stage` on the CPU; one frame at a time, finished
    on submit (module docstring)."""

    planar = True
    reuses_estimates = True

    def __init__(
        self,
        enhancer: Enhancer,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        settings: RuntimeSettings | None = None,
        overlap: bool = False,
    ) -> None:
        keep_frame_buffers_in_heap()
        device = torch.device(device)
        if device.type != "cpu":
            raise ValueError(f"CpuStage runs on the CPU, got {device}")
        super().__init__(enhancer, device=device, dtype=dtype)
        self.rgb: RgbLayout | None = None
        self.planes: PlanarLayout | None = None
        # the 8-bit paths run the network on ONNX Runtime (the float path keeps the module)
        self._runtime = OrtEstimator(self.enhancer.estimator, threads=torch.get_num_threads())
        self._last: Estimate | None = None  # video: the last estimate, for frames that barely change
        self._network: NetworkEstimate | None = None  # video: the network's last γ, for frames of the same scene
        self._noise = 0.0  # the last frame's measured noise, 8-bit levels
        self.overlap = overlap  # video: a frame's estimate runs on a worker beside its full-resolution work
        self._worker: ThreadPoolExecutor | None = None
        self._ahead: Future[Estimate] | None = None  # the estimate running on the worker
        self.configure(settings or enhancer.settings)

    def reset(self) -> None:
        self._settle()
        super().reset()
        self._last, self._network, self._noise = None, None, 0.0

    def close(self) -> None:
        self._settle()
        if self._worker is not None:
            self._worker.shutdown()
            self._worker = None
        super().close()

    def _configured(self, settings: RuntimeSettings) -> None:
        self._settle()
        self._last = self._network = None  # γ depends on the settings
        if self.rgb is None or self.rgb.map.gain != settings.gain:
            self.rgb = RgbLayout(gain=settings.gain, eps=self.enhancer.eps)
            self.planes = PlanarLayout(gain=settings.gain, eps=self.enhancer.eps)

    def submit(self, frame: Frame) -> Done:
        return Done(self._enhance(frame))

    @torch.inference_mode()
    def _enhance(self, frame: Frame) -> Frame:
        if frame.planes is not None:
            assert self.planes is not None
            return frame.with_planes(self._steps(self.planes, frame.planes))
        if frame.eight_bit:
            assert self.rgb is not None
            return frame.with_pixels(self._steps(self.rgb, frame.rgb))
        return enhance_float(self.enhancer, frame, self.video_state, device=self.device, dtype=self.dtype)

    def _steps(self, layout: Layout, pixels: object) -> object:
        """The step sequence on ``pixels`` in ``layout``'s forms."""
        timer = self.timer
        with step(timer, "downscale"):
            small = layout.thumbnail(pixels, scale=self.enhancer.scale)
        self._settle(keep=True)  # the worker's estimate, from the last frame, becomes the last one
        if self._network is not None:
            self._network.age += 1
        estimate = reusable(self._last, small, noise=self._noise)
        noise = None  # the frame's noise in its code values, measured once where a step needs it
        if estimate is None:
            noise = self._measure(layout, pixels)
        if estimate is None and self._runs_ahead(small):
            assert self._last is not None
            estimate = self._last
            if self._worker is None:
                self._worker = ThreadPoolExecutor(1, thread_name_prefix="sagc-estimate")
            self._ahead = self._worker.submit(
                self._estimate, small.copy(), full_size=False, noise=self._relative(layout, noise)
            )
        elif estimate is None:
            estimate = self._estimate(small, full_size=small is pixels, noise=self._relative(layout, noise))
        if estimate.curve is None:  # the gate leaves the frame alone: nothing to do at full resolution
            if self.temporal_denoiser is not None:
                self.temporal_denoiser.reset()
            return pixels
        filtered = self._filter(layout, pixels, weight=estimate.weight, night=estimate.night, noise=noise)
        return layout.apply(pixels, filtered, estimate.curve, timer=timer)

    def _runs_ahead(self, small: np.ndarray) -> bool:
        """Whether this frame's estimate runs on the worker while the frame takes the last one
        (:attr:`overlap`, in video, after an enhanced frame of the same scene)."""
        last = self._last
        return (
            self.overlap
            and self.video_state.active
            and last is not None
            and last.curve is not None
            and histogram_l1(luma_histogram_8bit(small), last.histogram) <= SCENE_CUT
        )

    def _settle(self, *, keep: bool = False) -> None:
        """Wait for the estimate running on the worker, if any (its errors raise here); with
        ``keep`` it is the last estimate from here on, else it is dropped with the rest of the
        state it set."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return
        try:
            ahead.result()
        finally:
            if not keep:
                self._last = self._network = None

    def _measure(self, layout: Layout, pixels: object) -> float | None:
        """The frame's noise in its code values where the exposure decision takes it as
        evidence (:meth:`~sagc.models.gate.ExposureGate.noise_evidence`), else None."""
        if not self.enhancer.weighs_noise:
            return None
        with step(self.timer, "estimate"):
            return layout.noise(pixels)

    def _relative(self, layout: Layout, noise: float | None) -> float | None:
        """``noise`` in code values as a fraction of the 8-bit RGB range, times the run-time
        gain: the units of the gain-adjusted thumbnail the decision sees."""
        return None if noise is None else layout.levels(noise) * self.settings.gain / 255.0

    def _filter(
        self, layout: Layout, pixels: object, *, weight: float, night: float, noise: float | None = None
    ) -> object:
        """The temporal and the bilateral noise reduction at the gate's ``weight``, the latter
        with its night passes at nightness ``night``; ``noise``: the frame's, in its code values,
        where it was measured already."""
        settings, timer = self.settings, self.timer
        filtered: object = pixels
        if self.temporal_denoiser is not None:
            with step(timer, "temporal noise reduction"):
                noise = layout.noise(pixels) if noise is None else noise
                self._noise = layout.levels(noise)
                filtered = layout.temporal(self.temporal_denoiser, pixels, levels=self._noise, weight=weight)
                noise = noise if filtered is pixels else None
        if settings.denoise:
            with step(timer, "noise reduction"):
                noise = layout.noise(filtered) if noise is None else noise
                self._noise = layout.levels(noise)
                filtered = layout.denoise(filtered, noise=noise, strength=weight * settings.denoise, night=night)
        return filtered

    def _gamma(
        self,
        small: torch.Tensor,
        *,
        night: float,
        frames: int = 1,
        network: Callable[[torch.Tensor], torch.Tensor] | None = None,
        noise: float | None = None,
    ) -> tuple[torch.Tensor, float, Levels | None]:
        """γ (the exposure decision and γ smoothed over time where the stage keeps that state,
        ``frames`` after the last estimate), the gate's weight (1 without one) and the frame's
        levels (:meth:`~sagc.models.gamma.Enhancer.gamma`) at the frame's nightness ``night``;
        ``network`` in place of the estimator (e.g. one that returns a held γ); ``noise``: the
        frame's noise level as a fraction of the 8-bit range (None: unmeasured)."""
        exposure = self.exposure
        if exposure is not None and frames > 1:
            exposure = functools.partial(exposure, frames=frames)
        measured = None if noise is None else small.new_full((small.shape[0],), noise)
        gamma, weight, levels = self.enhancer.gamma(
            small, exposure=exposure, estimator=network or self._runtime, noise=measured
        )
        if self.smoother is not None:
            seen = small if levels is None else levels(small)
            gamma = self.smoother(gamma, seen, frames=frames, night=small.new_full((small.shape[0],), night))
        return gamma, 1.0 if weight is None else float(weight), levels

    @torch.inference_mode()
    def _estimate(self, small: np.ndarray, *, full_size: bool, noise: float | None = None) -> Estimate:
        """γ's :class:`~sagc.ops.guide.Curve` (None where the gate leaves the frame alone: γ = 1,
        no filtering, nothing to do at full resolution) and the gate's weight for an h×w×3 uint8
        thumbnail (``full_size``: the frame itself), estimated afresh; in video the estimate is
        kept for later frames that barely change, and a frame of the same scene in nearly the
        same light reuses the network's γ (:mod:`sagc.stream.enhance.reuse`)."""
        x = torch.from_numpy(small).permute(2, 0, 1).unsqueeze(0).to(self.dtype).div_(255.0)
        x = self.enhancer.prepare(x.contiguous(memory_format=torch.channels_last))
        frames = 1 if self._last is None else 1 + self._last.age  # since the last estimate
        with step(self.timer, "estimate"):
            night = float(self.enhancer.exposure_gate.nightness(x)[0])
            gamma, weight, levels = self._gamma(
                x, night=night, frames=frames, network=self._network_for(small), noise=noise
            )
            point, gain = (0.0, 1.0) if levels is None else (float(levels.black), float(levels.gain))
            if levels is not None:
                x = levels(x)
            plain = self.settings.gain == 1.0 and point == 0.0 and gain == 1.0
            alone = weight == 0.0 and plain and bool((gamma >= 1.0).all())
            curve = None if alone else Curve.fit(gamma, x, fraction=self.settings.guide, black=point, gain=gain)
        estimate = Estimate(small.copy() if full_size else small, curve, weight, night=night)
        if self.video_state.active:  # video: later frames that barely change may reuse it
            self._last = estimate
        return estimate

    def _network_for(self, small: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
        """The estimator for the frame whose thumbnail is ``small``: the held γ where video may
        reuse it, else the network, whose γ is then held for the next frames."""
        if not self.video_state.active:
            return self._runtime
        held = network_reusable(self._network, small)
        if held is not None:
            return lambda _: held.gamma.clone()
        kept = small.copy()

        def run(x: torch.Tensor) -> torch.Tensor:
            gamma = self._runtime(x)
            # the decision gets copies: nothing it does reaches the held γ
            self._network = NetworkEstimate(kept, gamma.clone())
            return gamma

        return run

    def estimator_runner(self, x: torch.Tensor) -> Callable[[], object]:
        return lambda: self._runtime(x)

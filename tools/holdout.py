"""Score an enhancer recipe on footage it was not tuned on: one table of held-out figures.

    python tools/holdout.py --camvid $DATA/camvid --config configs/sagc_default.yaml \
        --out runs/holdout --clips $DATA/video/seattlestreet1.mp4 $DATA/video/countryroad.mp4 \
        --sice $DATA/sice

- **Leave one sequence out.** CamVid's frames (``train/images`` and ``val/images`` together) are
  grouped by sequence, the file-name prefix before ``_`` (``0001TP``, ``0006R0``, ``0016E5``).
  For each sequence the recipe (``--config`` with ``--set`` overrides) is trained on the others
  alone (``tools/holdout_folds.py``), its last step kept (no validation set: CamVid val is a
  training sequence), and with
  ``--sice`` the exposure gate is refitted on the same frames and SICE
  (``tools/fit_exposure_gate.py``), so no weight or threshold sees the held-out sequence. The
  held-out frames are darkened with the ``sagc data darken`` recipe (seed 0) at the default light
  range and at night level and enhanced as ``sagc enhance`` runs images: PSNR, SSIM, output mean
  luma against the clean frames', 1st-percentile luma (8-bit levels) against the clean frames'.
  ``--weights FILE`` scores one checkpoint on every sequence instead (marked "seen" where it was
  trained on them, as the packaged weights were). Training checkpoints in ``--out``; an
  interrupted run resumes.
- **Darkening ladder.** Up to ``--ladder`` held-out frames per fold darkened with one ISSR draw
  each at fixed light levels from 0.1 to 1.0 of normal light: the output's mean luma at each
  level, and how much it varies across levels ((max − min) / max of the set's means).
- **Clips.** Each ``--clips`` file as a video against itself, with each fold's weights and
  exposure decision (PSNR; a well-lit clip should come back unchanged, and the worst fold is
  reported), then darkened to dusk and to night (one draw per clip, fresh noise per frame) with
  the last fold's (or ``--weights``): PSNR, SSIM, flicker (the output's frame-to-frame mean-luma
  change over the input's, the evaluator's measure, which grows with the brightening), relative
  flicker (the same on log mean luma: 1 for an output that follows its input, below 1 for one
  steadier than its input), 1st-percentile luma against the clean clip's.
- **Fade.** With ``--fade CLIP``: the clip darkened with one ISSR draw whose light falls
  log-linearly from normal to night level (0.08) and back (``tools/score_exposure.py``'s fade),
  enhanced as a video: PSNR against the clean clip, flicker and relative flicker.
- **SICE.** NIQE and output mean luma on the under-exposed SICE images (mean luma ≤ 0.25; at
  most ``--sice-count``, evenly spaced).
- **SICE ladders.** Real under-exposed captures against a normal exposure of the same scene
  (:mod:`sagc.eval.ladders`: each scene's darkest exposure at mean luma 0.02–0.12 against its
  exposure nearest 0.45; at most ``--sice-count`` scenes, evenly spaced): PSNR, SSIM, mean luma
  and 1st-percentile luma against the reference's.

``--normal DIR`` adds normal-light folders (e.g. SICE, kept to the recipe's ``normal_luminance``)
to every fold's training; the folds are scored with the recipe's run-time settings, so a recipe
trained once can be scored with other ones (``--set runtime.gate=false``); ``--gate-exposure``,
``--gate-limits``, ``--no-lift`` and ``--gate-odds`` set the gate's exposure target, its range,
turn the exposure off and set the ramp. Frames are enhanced as ``sagc enhance`` runs them:
stills (sequences, ladder, SICE) by the 8-bit CPU path on RGB, clips and the fade stored as 8-bit
4:2:0 and enhanced by the 8-bit path on the planes, as decoded video is. ``--path`` runs every
frame through one form instead (``float``: the floating-point reference path), and ``--yuv420``
stores every input and output as 8-bit 4:2:0 as a video file does, so two runs with
``--yuv420`` hold the fast paths to the float path on the same inputs. Prints one Markdown
table; ``--json`` writes the figures too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import av
import numpy as np
import torch
from tqdm import tqdm

from sagc.core.config import load_config
from sagc.core.synth import DAY_LIGHT, NIGHT_LIGHT, darken, darken_sequence, sample_darken_params
from sagc.eval.ladders import ladder_pairs, scenes
from sagc.eval.metrics import psnr, ssim
from sagc.eval.niqe import niqe
from sagc.eval.temporal import TemporalMeter
from sagc.models import Enhancer, load_enhancer
from sagc.models.cue import ContentCue
from sagc.models.gate import TARGET_FEATURES, ExposureGate
from sagc.ops.colour import luma
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.enhance.reference import ReferenceStage
from sagc.stream.enhance.stage import Stage
from sagc.stream.media.frame import Frame, YuvPlanes, frame_to_tensor, tensor_to_pixels
from sagc.stream.media.images import list_images
from sagc.train.config import EnhancerConfig
from sagc.train.cue import CUE_STEPS, thumbnails, train_content_cue
from sagc.train.data import load_rgb

sys.path.insert(0, str(Path(__file__).resolve().parent))
import holdout_folds as folds  # noqa: E402 - a sibling script

log = logging.getLogger("holdout")

LADDER = (0.1, 0.2, 0.35, 0.5, 0.7, 1.0)
LIGHTS = {"default light": DAY_LIGHT, "night": NIGHT_LIGHT}
SICE_LOW = 0.25
PATHS = ("rgb", "float", "planar")


def train_fold(
    held_out: str,
    frames: dict[str, list[Path]],
    config: EnhancerConfig,
    out: Path,
    sice: Path | None,
    *,
    normal: Sequence[Path] = (),
    cue_steps: int = CUE_STEPS,
) -> Enhancer:
    """The recipe trained on every sequence but ``held_out`` (``tools/holdout_folds.py``, with
    ``normal`` folders as more normal-light references), with the gate refitted on the same
    frames (and SICE) when ``sice`` is given and the recipe's run-time settings use the gate
    (its content cue trained for ``cue_steps``)."""
    enhancer = load_enhancer(folds.train_fold(held_out, frames, config, out, normal=normal))
    enhancer.settings = config.runtime  # the recipe's run-time settings, also where only they changed
    if sice is not None and config.runtime.gate:
        camvid = [load_rgb(p) for p in folds.training_frames(held_out, frames)]
        enhancer.exposure_gate, enhancer.content_cue = fit_gate(camvid, sice, cue_steps=cue_steps)
    return enhancer


def fit_gate(camvid: list[torch.Tensor], sice: Path, *, cue_steps: int = CUE_STEPS) -> tuple[ExposureGate, ContentCue]:
    """The exposure gate's logistic model, exposure target and noise evidence, and its content
    cue, refitted as ``tools/fit_exposure_gate.py --cue`` fits them."""
    from fit_exposure_gate import cue_sets, exposure_pairs, features, fit, fit_exposure, fit_noise, flattened

    bright, dim, middle = [], [], []  # SICE above 0.4 and below 0.2 mean luma; every other in 0.3-0.7
    small_bright, small_dim = [], []  # their thumbnails, for the cue
    seen_middle = 0
    for path in list_images(sice):  # only the images to flatten are kept
        x = load_rgb(path)
        level = float(luma(x).mean())
        if level > 0.4:
            bright.append(features([x]))
            small_bright += thumbnails([x])
        if level < 0.2:
            dim.append(features([x]))
            small_dim += thumbnails([x])
        if 0.3 < level < 0.7:
            if seen_middle % 2 == 0:
                middle.append(x)
            seen_middle += 1
    normal = [features(camvid), *bright, features(flattened(camvid + middle, seed=3))]
    dark = [
        features(darken_sequence(camvid, seed=1, light=DAY_LIGHT)),
        features(darken_sequence(camvid, seed=1, light=NIGHT_LIGHT)),
        *dim,
    ]
    with torch.enable_grad():
        weights, bias = fit(torch.cat(normal), torch.cat(dark))
    exposure, _ = fit_exposure(*exposure_pairs(camvid + middle))
    gate = dataclasses.replace(
        ExposureGate(), coefficients=tuple(float(w) for w in weights), bias=bias, exposure=exposure
    )
    gate = dataclasses.replace(gate, noise=fit_noise(camvid, gate=gate))
    return gate, train_content_cue(*cue_sets(camvid, small_bright, small_dim, middle), steps=cue_steps)


@dataclasses.dataclass(frozen=True)
class Route:
    """The form every frame is enhanced in: ``path`` one of :data:`PATHS` — ``rgb`` the 8-bit
    CPU path on RGB (as ``sagc enhance`` runs images), ``float`` the reference path
    (:class:`~sagc.stream.enhance.reference.ReferenceStage`), ``planar`` the 8-bit path on 4:2:0
    planes (as ``sagc enhance`` runs decoded video); ``yuv420``: every input is first stored as
    8-bit 4:2:0 and every output too (BT.601 limited range, swscale's accurate rounding), as a
    video file holds them (``planar`` always)."""

    path: str = "rgb"
    yuv420: bool = False

    def __post_init__(self) -> None:
        if self.path not in PATHS:
            raise ValueError(f"path must be one of {', '.join(PATHS)}, got {self.path!r}")

    @property
    def planes(self) -> bool:
        """Whether frames travel as 8-bit 4:2:0 (in and out)."""
        return self.yuv420 or self.path == "planar"

    def stage(self, enhancer: Enhancer, *, temporal: bool) -> Stage:
        """A stage of this form for ``enhancer``: for unrelated stills (``temporal`` False) or a video."""
        stage = ReferenceStage(enhancer) if self.path == "float" else CpuStage(enhancer)
        stage.configure(stage.settings, temporal=temporal)
        return stage

    def frame(self, stage: Callable[[Frame], Frame], frame: Frame) -> Frame:
        """``frame`` (8-bit RGB) through ``stage`` in this form; the output as stored (RGB)."""
        if not self.planes:
            return stage(frame)
        planes = YuvPlanes.from_rgb(frame.rgb)
        stored_input = (
            frame.with_planes(planes) if self.path == "planar" else frame.with_pixels(planes.to_rgb(accurate=True))
        )
        out = stage(stored_input)
        stored = out.planes if out.planes is not None else YuvPlanes.from_rgb(out.rgb)
        return out.with_pixels(stored.to_rgb(accurate=True))

    def stored(self, x: torch.Tensor) -> torch.Tensor:
        """The reference ``x`` (3×H×W in [0, 1]) as this form stores a frame it leaves unchanged
        (1×3×H×W): 8-bit, and through 4:2:0 where inputs and outputs are, so a frame passed
        through scores 100 dB against it."""
        return frame_to_tensor(self.frame(lambda same: same, Frame(tensor_to_pixels(x[None], dtype=np.uint8))))


def stills_stage(enhancer: Enhancer, route: Route = Route()) -> Stage:
    """The stage as ``sagc enhance`` runs unrelated images (in ``route``'s form)."""
    return route.stage(enhancer, temporal=False)


def enhance(stage: Stage, x: torch.Tensor, route: Route = Route()) -> torch.Tensor:
    """An image tensor in [0, 1], stored as 8 bits, through ``stage`` in ``route``'s form."""
    return frame_to_tensor(route.frame(stage, Frame(tensor_to_pixels(x[None], dtype=np.uint8))))


def p1_levels(x: torch.Tensor) -> float:
    """The 1st-percentile luma in 8-bit levels."""
    return 255.0 * float(torch.quantile(luma(x.float()).flatten()[::7], 0.01))


def score_pairs(
    stage: Stage, dark: list[torch.Tensor], clean: list[torch.Tensor], route: Route = Route()
) -> dict[str, float]:
    rows: dict[str, list[float]] = {"psnr": [], "ssim": [], "luma": [], "clean_luma": [], "p1": [], "clean_p1": []}
    for low, ref in zip(dark, clean, strict=True):
        y, ref = enhance(stage, low, route), route.stored(ref)
        rows["psnr"].append(float(psnr(y, ref)))
        rows["ssim"].append(float(ssim(y, ref)))
        rows["luma"].append(float(luma(y).mean()))
        rows["clean_luma"].append(float(luma(ref).mean()))
        rows["p1"].append(p1_levels(y))
        rows["clean_p1"].append(p1_levels(ref))
    return {name: float(np.mean(values)) for name, values in rows.items()} | {"frames": len(dark)}


def ladder_means(stage: Stage, clean: list[torch.Tensor], route: Route = Route()) -> list[float]:
    """The output's mean luma over ``clean`` at each :data:`LADDER` level (one draw per image,
    the light set to the level, the signal noise scaled with it)."""
    generator = torch.Generator().manual_seed(0)
    draws = [sample_darken_params(generator, light=(0.5, 0.5)) for _ in clean]
    means = []
    for level in LADDER:
        outputs = []
        for x, base in zip(clean, draws, strict=True):
            params = dataclasses.replace(base, light=level, sigma_signal=base.sigma_signal * 0.5 / level)
            outputs.append(float(luma(enhance(stage, darken(x, params, generator=generator), route)).mean()))
        means.append(float(np.mean(outputs)))
    return means


def clip_frames(path: str, limit: int) -> Iterator[torch.Tensor]:
    with av.open(path) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index == limit:
                return
            yield torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1).float() / 255


def score_clip(
    enhancer: Enhancer, path: str, light: tuple[float, float] | None, limit: int, route: Route = Route()
) -> dict[str, float]:
    """A clip as a video: against itself (``light`` None), or darkened with one draw."""
    stage = route.stage(enhancer, temporal=True)
    generator = torch.Generator().manual_seed(0)
    params = None if light is None else sample_darken_params(generator, light=light)
    meter, rows = TemporalMeter(warping=False), {"psnr": [], "ssim": [], "p1": [], "clean_p1": []}
    for clean in clip_frames(path, limit):
        low = clean if params is None else darken(clean, params, generator=generator)
        y = enhance(stage, low, route)
        meter.update(tensor_to_pixels(low[None], dtype=np.uint8), tensor_to_pixels(y, dtype=np.uint8))
        ref = route.stored(clean)
        rows["psnr"].append(min(100.0, float(psnr(y, ref))))
        rows["ssim"].append(float(ssim(y, ref)))
        rows["p1"].append(p1_levels(y))
        rows["clean_p1"].append(p1_levels(ref))
    steady = relative_flicker(meter.output_luma, meter.input_luma)
    return {name: float(np.mean(values)) for name, values in rows.items()} | {
        "flicker": float(meter.flicker),
        "relative_flicker": steady,
    }


def relative_flicker(output: Sequence[float], source: Sequence[float]) -> float:
    """Frame-to-frame change of the output's log mean luma over the input's: 1 for an output that
    only follows the input by a constant brightening (the evaluator's flicker is that brightening
    then), below 1 for one steadier than its input."""
    change = lambda values: float(np.abs(np.diff(np.log(np.maximum(values, 1e-4)))).sum())  # noqa: E731
    return change(output) / max(change(source), 1e-12)


def score_fade(enhancer: Enhancer, path: str, limit: int, route: Route = Route()) -> dict[str, float]:
    """The day → night → day fade as a video (the exposure decision smoothed over time)."""
    from score_exposure import faded

    stage = route.stage(enhancer, temporal=True)
    meter, scores = TemporalMeter(warping=False), []
    for dark, clean in faded(path, limit):
        out = route.frame(stage, dark)
        meter.update(dark.rgb, out.rgb)
        reference = route.stored(frame_to_tensor(clean)[0])
        scores.append(min(100.0, float(psnr(frame_to_tensor(out), reference))))
    return {
        "frames": len(scores),
        "psnr": float(np.mean(scores)),
        "flicker": float(meter.flicker),
        "relative_flicker": relative_flicker(meter.output_luma, meter.input_luma),
    }


def evenly(items: list, count: int) -> list:
    """At most ``count`` (> 0) of ``items``, evenly spaced from the first."""
    return items[:: max(1, len(items) // count)][:count]


def score_sice(enhancer: Enhancer, sice: Path, count: int, route: Route = Route()) -> dict[str, float]:
    stage = stills_stage(enhancer, route)
    images = [x for x in (load_rgb(p) for p in list_images(sice)) if float(luma(x).mean()) <= SICE_LOW]
    images = evenly(images, count)
    before, after, out_luma = [], [], []
    for x in images:
        y = enhance(stage, x, route)
        before.append(float(niqe(x[None])))
        after.append(float(niqe(y)))
        out_luma.append(float(luma(y).mean()))
    return {"images": len(images), "niqe_input": float(np.mean(before)), "niqe": float(np.mean(after))} | {
        "luma": float(np.mean(out_luma))
    }


def score_ladders(enhancer: Enhancer, sice: Path, count: int, route: Route = Route()) -> dict[str, float]:
    """Real under-exposed captures against their scene's normal exposure (:mod:`sagc.eval.ladders`):
    at most ``count`` scenes, evenly spaced."""
    stage = stills_stage(enhancer, route)
    pairs = ladder_pairs(scenes(list_images(sice)))
    pairs = evenly(pairs, count)
    if not pairs:
        return {"scenes": 0}
    rows: dict[str, list[float]] = {name: [] for name in ("psnr", "ssim", "luma_input", "luma", "luma_reference")}
    rows |= {"p1": [], "p1_reference": []}
    for dark, normal in pairs:
        x, reference = load_rgb(dark.path), route.stored(load_rgb(normal.path))
        y = enhance(stage, x, route)
        rows["psnr"].append(float(psnr(y, reference)))
        rows["ssim"].append(float(ssim(y, reference)))
        rows["luma_input"].append(dark.luma)
        rows["luma"].append(float(luma(y).mean()))
        rows["luma_reference"].append(float(luma(reference).mean()))
        rows["p1"].append(p1_levels(y))
        rows["p1_reference"].append(p1_levels(reference))
    return {"scenes": len(pairs)} | {name: float(np.mean(values)) for name, values in rows.items()}


def table(figures: dict) -> list[str]:
    lines = ["| measure | figures |", "|---|---|"]
    for sequence, fold in figures["folds"].items():
        seen = " (seen in training)" if fold["seen"] else ""
        for light, s in fold["scores"].items():
            lines.append(
                f"| {sequence}{seen}, {light} ({s['frames']}) | {s['psnr']:.2f} dB / {s['ssim']:.4f}; "
                f"mean luma {s['luma']:.3f} (clean {s['clean_luma']:.3f}); "
                f"1st pct {s['p1']:.1f} (clean {s['clean_p1']:.1f}) |"
            )
        means = fold["ladder"]
        if not means:
            continue
        levels = ", ".join(f"{level:g}: {m:.3f}" for level, m in zip(LADDER, means, strict=True))
        spread = (max(means) - min(means)) / max(max(means), 1e-6)
        lines.append(f"| {sequence} ladder, output mean luma by light | {levels}; varies {100 * spread:.1f} % |")
    for name, clip in figures["clips"].items():
        ident = clip["identity"]
        against = f"{ident['psnr']:.2f} dB"
        if len(ident["by_fold"]) > 1:
            each = ", ".join(f"{fold} {value:.2f}" for fold, value in ident["by_fold"].items())
            against = f"worst fold {against} ({each})"
        lines.append(f"| {name} against itself | {against} |")
        for light in ("dusk", "night"):
            c = clip[light]
            lines.append(
                f"| {name} at {light} | {c['psnr']:.2f} dB / {c['ssim']:.4f}; flicker {c['flicker']:.3f} "
                f"(relative {c['relative_flicker']:.3f}); "
                f"1st pct {c['p1']:.1f} (clean {c['clean_p1']:.1f}) |"
            )
    if figures.get("fade"):
        f = figures["fade"]
        lines.append(
            f"| fade day → night → day ({f['frames']}) | {f['psnr']:.2f} dB; flicker {f['flicker']:.3f} "
            f"(relative {f['relative_flicker']:.3f}) |"
        )
    if figures.get("sice"):
        s = figures["sice"]
        lines.append(
            f"| SICE ≤ {SICE_LOW} mean luma ({s['images']}) | NIQE {s['niqe']:.3f} (input {s['niqe_input']:.3f}); "
            f"mean luma {s['luma']:.3f} |"
        )
    if figures.get("ladders", {}).get("scenes"):
        s = figures["ladders"]
        lines.append(
            f"| SICE ladders: darkest exposure against its scene's normal one ({s['scenes']}) | "
            f"{s['psnr']:.2f} dB / {s['ssim']:.4f}; mean luma {s['luma']:.3f} (input {s['luma_input']:.3f}, "
            f"reference {s['luma_reference']:.3f}); 1st pct {s['p1']:.1f} (reference {s['p1_reference']:.1f}) |"
        )
    return lines


def runtime_overrides(overrides: Sequence[str], config: EnhancerConfig) -> dict[str, object]:
    """The run-time settings among ``--set`` overrides (``runtime.black=0.8``), as parsed into
    ``config``: what ``--weights`` changes in the checkpoint's own settings."""
    names = [item.split("=", 1)[0].strip() for item in overrides]
    fields = [name.removeprefix("runtime.") for name in names if name.startswith("runtime.")]
    return {field: getattr(config.runtime, field) for field in fields}


@torch.inference_mode()
def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    folds.fold_arguments(parser)
    parser.add_argument("--weights", help="score this checkpoint on every sequence instead of training folds")
    parser.add_argument("--frames", type=int, default=0, help="score at most this many frames per sequence (0: all)")
    parser.add_argument("--ladder", type=int, default=20, help="frames per fold on the darkening ladder")
    parser.add_argument("--clips", nargs="*", default=[])
    parser.add_argument("--clip-frames", type=int, default=150)
    parser.add_argument("--fade", help="a daylight clip to fade to night and back, enhanced as a video")
    parser.add_argument("--fade-frames", type=int, default=300)
    parser.add_argument("--sice", type=Path)
    parser.add_argument("--sice-count", type=int, default=60)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--cue-steps",
        type=int,
        default=CUE_STEPS,
        help=f"training steps of each fold's content cue (default {CUE_STEPS}, as the packaged cue)",
    )
    parser.add_argument(
        "--gate-exposure",
        nargs=len(TARGET_FEATURES) + 1,
        type=float,
        metavar="C",
        help=f"the gate's exposure target model: the coefficients of {', '.join(TARGET_FEATURES)} and the offset "
        "(default: the gate's, or as refitted)",
    )
    parser.add_argument("--no-lift", action="store_true", help="use γ as the network gives it (no exposure target)")
    parser.add_argument(
        "--gate-limits", nargs=2, type=float, metavar=("LOW", "HIGH"), help="the range of the gate's target mean luma"
    )
    parser.add_argument(
        "--gate-odds", nargs=2, type=float, metavar=("START", "FULL"), help="the gate's ramp (default: the gate's)"
    )
    parser.add_argument(
        "--path",
        choices=PATHS,
        help="enhance every frame in one form: the 8-bit path on RGB, the float reference path or the 8-bit "
        "path on 4:2:0 planes (default: stills on RGB, clips on 4:2:0 planes, as sagc enhance runs them)",
    )
    parser.add_argument(
        "--yuv420", action="store_true", help="store every input and output as 8-bit 4:2:0, as video files hold them"
    )
    args = parser.parse_args(argv)
    if args.cue_steps < 1:
        parser.error(f"--cue-steps must be at least 1, got {args.cue_steps}")
    route = Route(args.path or "rgb", args.yuv420)  # stills
    video = Route(args.path or "planar", args.yuv420)  # clips and the fade
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    frames = folds.sequences(args.camvid)
    if len(frames) < 2:
        raise SystemExit(f"holdout: {args.camvid} holds {len(frames)} sequence(s); leaving one out needs two")
    config = load_config(EnhancerConfig, args.config, args.set)
    figures: dict = {"folds": {}, "clips": {}}
    identities: dict[str, dict[str, dict[str, float]]] = {}  # clip → fold → its scores against itself
    enhancer = None
    for held_out, paths in frames.items():
        if args.weights:
            enhancer, seen = load_enhancer(args.weights), True
            enhancer.settings = enhancer.settings.replace(**runtime_overrides(args.set, config))
        else:
            with torch.inference_mode(False):
                enhancer = train_fold(
                    held_out, frames, config, args.out, args.sice, normal=args.normal, cue_steps=args.cue_steps
                )
            seen = False
        if args.gate_exposure is not None or args.no_lift:
            exposure = None if args.no_lift else tuple(args.gate_exposure)
            enhancer.exposure_gate = dataclasses.replace(enhancer.exposure_gate, exposure=exposure)
        if args.gate_limits is not None:
            enhancer.exposure_gate = dataclasses.replace(enhancer.exposure_gate, limits=tuple(args.gate_limits))
        if args.gate_odds is not None:
            enhancer.exposure_gate = dataclasses.replace(enhancer.exposure_gate, odds=tuple(args.gate_odds))
        stage = stills_stage(enhancer, route)
        clean = [load_rgb(p) for p in paths[: args.frames or None]]
        scores = {
            light: score_pairs(stage, list(darken_sequence(clean, seed=0, light=value)), clean, route)
            for light, value in tqdm(LIGHTS.items(), desc=held_out, leave=False)
        }
        spaced = evenly(clean, args.ladder) if args.ladder else []
        ladder = ladder_means(stage, spaced, route) if spaced else []
        figures["folds"][held_out] = {"seen": seen, "scores": scores, "ladder": ladder}
        if not args.weights:  # each fold's own decision on daylight footage none of them saw
            for path in args.clips:
                identities.setdefault(path, {})[held_out] = score_clip(enhancer, path, None, args.clip_frames, video)
    assert enhancer is not None
    for path in args.clips:
        by_fold = identities.get(path) or {"all": score_clip(enhancer, path, None, args.clip_frames, video)}
        worst = min(by_fold, key=lambda fold: by_fold[fold]["psnr"])
        figures["clips"][Path(path).name] = {
            "identity": by_fold[worst] | {"fold": worst, "by_fold": {f: s["psnr"] for f, s in by_fold.items()}},
            "dusk": score_clip(enhancer, path, DAY_LIGHT, args.clip_frames, video),
            "night": score_clip(enhancer, path, NIGHT_LIGHT, args.clip_frames, video),
        }
    if args.fade:
        figures["fade"] = score_fade(enhancer, args.fade, args.fade_frames, video)
    if args.sice is not None:
        figures["sice"] = score_sice(enhancer, args.sice, args.sice_count, route)
        figures["ladders"] = score_ladders(enhancer, args.sice, args.sice_count, route)
    for line in table(figures):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()

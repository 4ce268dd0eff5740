"""``sagc export``: the run-time enhancer as one ONNX file."""

from __future__ import annotations

import argparse
from pathlib import Path

from sagc.core.errors import SagcError

from .options import add_overwrite_option


def add_export(sub: argparse._SubParsersAction) -> None:
    from sagc.cli.options import add_enhancer_options

    p = sub.add_parser(
        "export",
        help="write the enhancer as an ONNX model (any batch and frame size)",
        description="Export the run-time enhancer (gain, γ estimation, exposure gate, noise reduction, "
        "guided upsampling, x ** γ) to ONNX: input 'image' N×3×H×W float32 RGB in [0, 1], output "
        "'enhanced' of the same shape; the settings are stored in the model's metadata. "
        "Needs pip install -e '.[export]'.",
    )
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    add_enhancer_options(p)
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18)")
    add_overwrite_option(p, what="an existing output")
    p.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from sagc.cli.options import enhancer_from_args, setting_overrides
    from sagc.core.outputs import check_outputs
    from sagc.models import resolve_weights
    from sagc.models.export import MIN_SIZE, OPSET, VIDEO_ONLY, export_onnx

    output = Path(args.output)
    if output.suffix.lower() != ".onnx":
        raise SagcError(f"the output should end in .onnx, got {output}")
    weights = resolve_weights(args.weights)
    check_outputs([output], [weights], overwrite=args.overwrite)
    enhancer = enhancer_from_args(args)
    given = setting_overrides(args)
    inherited = {name: 0.0 for name in VIDEO_ONLY if given.get(name) is None and getattr(enhancer.settings, name)}
    if inherited:  # the weights' video-only settings: the exported graph is per image
        enhancer.settings = enhancer.settings.replace(**inherited)
    metadata = {"sagc_weights": weights.name}
    path = export_onnx(enhancer, output, metadata=metadata, opset=args.opset or OPSET, overwrite=args.overwrite)
    size_kb = path.stat().st_size / 1024
    print(
        f"wrote {path} ({size_kb:.0f} KB, opset {args.opset or OPSET}): image N×3×H×W float32 RGB in [0, 1] "
        f"(H, W >= {MIN_SIZE}) → enhanced; {enhancer.settings.line()}"
        + (f" ({', '.join(inherited)} of the weights left out: video only)" if inherited else "")
    )
    return 0

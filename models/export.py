"""Export the enhancer to ONNX: the whole run-time enhancer, any batch and frame size.

The graph takes ``image``, N×3×H×W float32 RGB in [0, 1], and returns ``enhanced`` of the same
shape: gain, γ estimation at 1/scale, the exposure gate, the noise reduction, the guided upsampling
and ``x ** γ``, as :class:`~sagc.models.Enhancer` computes them in floating point. Batch, height and width are
symbolic (at least ``MIN_SIZE`` pixels a side). The run-time settings and the weights'
provenance are written into the model's metadata. Needs the ``onnx`` and ``onnxscript``
packages (``pip install -e ".[export]"``); torch's exporter writes the file.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from sagc.core import __version__
from sagc.core.atomic import atomic_write
from sagc.core.errors import SagcError
from sagc.core.extras import require
from sagc.models import Enhancer

__all__ = ["MIN_SIZE", "OPSET", "VIDEO_ONLY", "export_onnx"]

log = logging.getLogger(__name__)

OPSET = 18
VIDEO_ONLY = ("smooth", "temporal_denoise")  # settings that keep state between frames: not in a graph
MIN_SIZE = 16  # pixels a side the exported graph accepts (the noise filter's window needs a margin)
_SAMPLE = (2, 3, 96, 128)  # traced with this shape; the dimensions are then symbolic


class _Graph(nn.Module):
    """The enhancer with one tensor in and one out, as the exporter wants it."""

    def __init__(self, enhancer: Enhancer) -> None:
        super().__init__()
        self.enhancer = enhancer

    def forward(self, image: Tensor) -> Tensor:
        return self.enhancer(image)


def export_onnx(
    enhancer: Enhancer,
    path: str | os.PathLike[str],
    *,
    metadata: dict[str, str] | None = None,
    opset: int = OPSET,
    overwrite: bool = True,
) -> Path:
    """Write ``enhancer`` (moved to the CPU in float32) as one ONNX file at ``path``, atomically.

    ``metadata`` is added to the model's ``metadata_props`` beside the run-time settings.
    """
    require("onnx", "onnxscript", purpose="sagc export")
    stateful = [name for name in VIDEO_ONLY if getattr(enhancer.settings, name)]
    if stateful:
        flags = " ".join(f"--{name.replace('_', '-')} 0" for name in stateful)
        raise SagcError(
            f"{', '.join(stateful)}: an exported model enhances single images and holds no state between "
            f"frames; export with {flags} (they run in sagc's own video pipeline)"
        )
    import onnx
    from torch.export import Dim

    enhancer = enhancer.to(device="cpu", dtype=torch.float32).eval()
    sample = torch.rand(_SAMPLE, generator=torch.Generator().manual_seed(0))
    dims = {
        0: Dim("batch", min=1, max=1024),
        2: Dim("height", min=MIN_SIZE, max=16384),
        3: Dim("width", min=MIN_SIZE, max=16384),
    }
    settings = enhancer.settings.describe()
    props = {"sagc_version": __version__, "sagc_runtime": json.dumps(settings), **(metadata or {})}

    def write(tmp: Path) -> None:
        chatter = io.StringIO()  # the exporter prints its progress; keep it for --debug
        with torch.no_grad(), contextlib.redirect_stdout(chatter):
            torch.onnx.export(
                _Graph(enhancer).eval(),
                (sample,),
                str(tmp),
                dynamo=True,
                input_names=["image"],
                output_names=["enhanced"],
                opset_version=opset,
                dynamic_shapes={"image": dims},
                external_data=False,
            )
        log.debug("%s", chatter.getvalue().strip())
        model = onnx.load(str(tmp))
        for key, value in props.items():
            model.metadata_props.add(key=key, value=value)
        model.doc_string = "sagc enhancer: image N×3×H×W float32 RGB in [0, 1] → enhanced, same shape"
        onnx.save(model, str(tmp))

    try:
        return atomic_write(path, write, overwrite=overwrite)
    except SagcError:
        raise
    except Exception as exc:  # the exporter's own failure: say what failed in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SagcError(f"ONNX export failed ({type(exc).__name__}: {first})") from exc

"""Make the NIQE golden values the tests compare against, with BasicSR's reference code.

    pip download basicsr==1.4.2 --no-deps -d /tmp/bsr && tar xzf /tmp/bsr/basicsr-1.4.2.tar.gz -C /tmp/bsr
    python tools/make_niqe_golden.py --basicsr /tmp/bsr/basicsr-1.4.2

Writes seven PNG test images (colour 1/f textures and a ``sagc.stream.media.demo`` street scene with
grain; clean, noisy, blurred, darkened and JPEG-compressed) to tests/data/niqe/ and
BasicSR's ``calculate_niqe(img, crop_border=0, input_order='HWC', convert_to='y')`` of each to
tests/data/niqe/golden.json. BasicSR's modules are loaded from the source folder by file (its
package ``__init__`` pulls in the whole training stack, which the metric does not need).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import scipy.ndimage

from sagc.stream.media.demo import street_scene

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "niqe"


def load_basicsr_niqe(root: Path):
    """BasicSR's ``calculate_niqe`` from an unpacked source tree, without its package init."""
    sys.modules.setdefault("scipy.ndimage.filters", scipy.ndimage)  # removed from recent SciPy

    def module(name: str, path: Path | None = None) -> types.ModuleType:
        if path is None:
            mod = types.ModuleType(name)
            mod.__path__ = []
        else:
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        if path is not None:
            spec.loader.exec_module(mod)
        return mod

    pkg = root / "basicsr"
    for name in ("basicsr", "basicsr.utils", "basicsr.metrics"):
        module(name)
    registry = types.ModuleType("basicsr.utils.registry")

    class _Registry:
        def register(self):
            return lambda fn: fn

    registry.METRIC_REGISTRY = _Registry()
    sys.modules["basicsr.utils.registry"] = registry
    color = module("basicsr.utils.color_util", pkg / "utils" / "color_util.py")
    sys.modules["basicsr.utils"].bgr2ycbcr = color.bgr2ycbcr
    module("basicsr.utils.matlab_functions", pkg / "utils" / "matlab_functions.py")
    module("basicsr.metrics.metric_util", pkg / "metrics" / "metric_util.py")
    return module("basicsr.metrics.niqe", pkg / "metrics" / "niqe.py").calculate_niqe


def _fractal(rng: np.random.Generator, height: int, width: int, slope: float) -> np.ndarray:
    """Colour 1/f^slope noise in 0…255: a texture with natural-image-like spectra."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    falloff = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(height, width)) ** slope
    channels = []
    for _ in range(3):
        spectrum = falloff * np.exp(2j * np.pi * rng.random(falloff.shape))
        plane = np.fft.irfft2(spectrum, s=(height, width))
        channels.append((plane - plane.mean()) / plane.std())
    mix = np.stack(channels, -1) @ np.array([[1.0, 0.9, 0.8], [0.2, 0.5, 0.1], [0.1, 0.1, 0.6]])
    return np.clip(128 + 40 * mix, 0, 255)


def make_images() -> dict[str, np.ndarray]:
    """RGB uint8 images, deterministic."""
    rng = np.random.default_rng(0)
    nature = _fractal(rng, 288, 384, 1.0)
    rough = _fractal(rng, 360, 480, 0.8)
    street = street_scene(40, size=(480, 360), rate=30, seed=7).astype(np.float64)
    grain = np.clip(street + rng.normal(0, 6, street.shape), 0, 255)
    noisy = np.clip(nature + rng.normal(0, 15, nature.shape), 0, 255)
    blurred = cv2.GaussianBlur(rough, (0, 0), 2.0)
    dark = rough * 0.35
    images = {"nature": nature, "rough": rough, "street": grain, "noisy": noisy, "blurred": blurred, "dark": dark}
    images = {name: np.round(rgb).astype(np.uint8) for name, rgb in images.items()}
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(images["rough"], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 10])
    assert ok
    images["jpeg"] = cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--basicsr", type=Path, required=True, help="unpacked basicsr source folder")
    args = parser.parse_args()
    calculate_niqe = load_basicsr_niqe(args.basicsr)
    OUT.mkdir(parents=True, exist_ok=True)
    golden = {}
    for name, rgb in make_images().items():
        path = OUT / f"{name}.png"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)  # BasicSR takes BGR HWC in 0..255
        golden[path.name] = calculate_niqe(bgr, crop_border=0, input_order="HWC", convert_to="y")
        print(f"{path.name}: {golden[path.name]:.6f}")
    meta = {"reference": "basicsr 1.4.2 calculate_niqe(crop_border=0, input_order='HWC', convert_to='y')"}
    (OUT / "golden.json").write_text(json.dumps({"meta": meta, "niqe": golden}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Evaluation metrics against independent references: BasicSR's NIQE (golden values stored with
the script that made them), scikit-image's Y conversion, LPIPS recomputed from its definition,
and the temporal metrics on clips encoded here."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from sagc.core.errors import SagcError
from sagc.eval.metrics import psnr, ssim
from sagc.eval.niqe import load_niqe_params, matlab_resize_half, niqe

GOLDEN = Path(__file__).parent / "data" / "niqe"


def _load(path: Path) -> torch.Tensor:
    rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).double() / 255.0


def _golden() -> dict[str, float]:
    return json.loads((GOLDEN / "golden.json").read_text())["niqe"]


@pytest.mark.parametrize("name", sorted(_golden()))
def test_niqe_matches_basicsr_golden_values(name: str) -> None:
    ours = float(niqe(_load(GOLDEN / name)))
    assert ours == pytest.approx(_golden()[name], abs=0.01)


def test_niqe_is_batched_and_reads_the_papers_mat_format(tmp_path: Path) -> None:
    scipy_io = pytest.importorskip("scipy.io")
    names = ["nature.png", "noisy.png"]
    batch = torch.cat([_load(GOLDEN / n) for n in names])
    together = niqe(batch)
    assert together.shape == (2,)
    for value, name in zip(together.tolist(), names, strict=True):
        assert value == pytest.approx(_golden()[name], abs=0.01)
    packaged = load_niqe_params()
    mat = tmp_path / "mvg.mat"
    scipy_io.savemat(mat, {"mean": packaged.mean.numpy()[None], "cov": packaged.cov.numpy()})
    from_mat = niqe(batch, params=load_niqe_params(mat))
    torch.testing.assert_close(from_mat, together, rtol=1e-6, atol=1e-6)


def test_niqe_params_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(SagcError, match="not found"):
        load_niqe_params(tmp_path / "missing.npz")
    bogus = tmp_path / "bogus.npz"
    np.savez(bogus, something=np.zeros(3))
    with pytest.raises(SagcError, match="not a NIQE model"):
        load_niqe_params(bogus)


def test_niqe_rejects_images_smaller_than_one_block_and_is_nan_for_one_block() -> None:
    with pytest.raises(ValueError, match="96"):
        niqe(torch.rand(1, 3, 64, 200))
    assert torch.isnan(niqe(torch.rand(1, 3, 100, 150))).all()


def test_matlab_resize_keeps_constants_and_halves() -> None:
    image = torch.full((10, 14), 0.25, dtype=torch.float64)
    out = matlab_resize_half(image)
    assert out.shape == (5, 7)
    torch.testing.assert_close(out, torch.full_like(out, 0.25))


def test_psnr_inf_and_ssim_one_for_identical_images() -> None:
    x = torch.rand(2, 3, 32, 40)
    assert torch.isinf(psnr(x, x)).all()
    torch.testing.assert_close(ssim(x, x), torch.ones(2, dtype=torch.float64))


def test_blurred_copy_scores_lower() -> None:
    image = _load(GOLDEN / "rough.png")
    rgb = (image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    slightly = torch.from_numpy(cv2.GaussianBlur(rgb, (0, 0), 0.8)).permute(2, 0, 1)[None] / 255.0
    heavily = torch.from_numpy(cv2.GaussianBlur(rgb, (0, 0), 2.5)).permute(2, 0, 1)[None] / 255.0
    assert psnr(heavily, image) < psnr(slightly, image) < float("inf")
    assert ssim(heavily, image) < ssim(slightly, image) < 1.0


def test_y_channel_metrics_match_scikit_image() -> None:
    color = pytest.importorskip("skimage.color")
    metrics = pytest.importorskip("skimage.metrics")
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, 48, 64, generator=gen, dtype=torch.float64)
    b = (a + 0.05 * torch.randn(a.shape, generator=gen, dtype=torch.float64)).clamp(0, 1)

    def y_of(t: torch.Tensor) -> np.ndarray:
        rgb8 = (t[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        return color.rgb2ycbcr(rgb8)[..., 0]  # MATLAB's formula, 16…235, float

    ya, yb = y_of(a), y_of(b)
    expected_psnr = metrics.peak_signal_noise_ratio(yb, ya, data_range=255)
    expected_ssim = metrics.structural_similarity(
        ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert float(psnr(a, b, y_channel=True)) == pytest.approx(expected_psnr, abs=1e-6)
    assert float(ssim(a, b, y_channel=True)) == pytest.approx(expected_ssim, abs=1e-4)


# ---------------------------------------------------------------- LPIPS


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An AlexNet state dict built here (seeded), standing in for the ImageNet file."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("alexnet") / "alexnet-owt-test.pth"
    torch.save(torchvision.models.alexnet().state_dict(), path)
    return path


def _lpips_by_definition(state: dict, x: torch.Tensor, y: torch.Tensor) -> float:
    """LPIPS from its published definition: AlexNet relu1…relu5, unit-normalised channels,
    squared difference weighted by the packaged linear heads, spatial mean, summed."""
    import lpips
    import torchvision

    net = torchvision.models.alexnet()
    net.load_state_dict(state)
    heads_file = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"
    heads = torch.load(heads_file, map_location="cpu", weights_only=True)
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def taps(img: torch.Tensor) -> list[torch.Tensor]:
        h = ((img * 2 - 1) - shift) / scale
        out = []
        for index, layer in enumerate(net.features):
            h = layer(h)
            if index in (1, 4, 7, 9, 11):
                out.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    with torch.no_grad():
        total = 0.0
        for k, (fa, fb) in enumerate(zip(taps(x), taps(y), strict=True)):
            w = heads[f"lin{k}.model.1.weight"]
            total += float(((fa - fb) ** 2 * w.view(1, -1, 1, 1)).sum(1).mean())
    return total


def test_lpips_wiring_matches_the_definition(alexnet_file: Path) -> None:
    pytest.importorskip("lpips")
    from sagc.eval.perceptual import load_lpips

    metric = load_lpips(alexnet_file)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 64, 64, generator=gen)
    y = (x + 0.1 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    value = float(metric(x, y))
    state = torch.load(alexnet_file, weights_only=True)
    assert value == pytest.approx(_lpips_by_definition(state, x, y), rel=1e-4)
    assert float(metric(x, x)) == pytest.approx(0.0, abs=1e-7)
    assert value > 0


def test_lpips_without_weights_is_skipped_with_a_notice(tmp_path: Path, monkeypatch, caplog) -> None:
    from sagc.eval.perceptual import load_lpips

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_cache"))
    with caplog.at_level("WARNING"):
        assert load_lpips(None) is None
    assert "LPIPS skipped" in caplog.text and "--lpips-weights" in caplog.text


def test_lpips_bad_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    from sagc.eval.perceptual import load_lpips

    with pytest.raises(SagcError, match="not found"):
        load_lpips(tmp_path / "none.pth")
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(SagcError, match="not an AlexNet state dict"):
        load_lpips(other)


# ---------------------------------------------------------------- temporal


def _texture(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    base = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 2.0)
    return cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX)


def write_lossless(path: Path, frames: list[np.ndarray], rate: int = 24) -> Path:
    """FFV1 in Matroska: decoded frames are bit-exact copies of ``frames``."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "bgr0"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="bgr0")
            frame.pts, frame.time_base = i, Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


class Oscillate:
    """A method plugin that adds brightness oscillation: gain 1 ± amplitude, alternating."""

    def __init__(self, amplitude: float) -> None:
        self.amplitude, self.calls = amplitude, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return (x * (1 + self.amplitude * (-1) ** self.calls)).clamp(0, 1)

    def reset(self) -> None:
        self.calls = 0


def _evaluate(path: Path, methods) -> dict:
    from sagc.eval.evaluator import EvalOptions, evaluate_video

    report = evaluate_video(str(path), methods, options=EvalOptions())
    return report.means()


def test_flicker_zero_on_static_clip_and_grows_with_oscillation(tmp_path: Path) -> None:
    from sagc.eval.methods import External, parse_method

    still = _texture(72, 96)
    static = write_lossless(tmp_path / "static.mkv", [still] * 8)
    means = _evaluate(static, [parse_method("identity"), parse_method("gamma:0.7")])
    assert means["identity"]["flicker"] == 0.0 and means["gamma:0.7"]["flicker"] == 0.0

    wide = (_texture(72, 200) * 0.6).astype(np.uint8)  # a pan across it changes the mean a little
    moving = write_lossless(tmp_path / "moving.mkv", [wide[:, 6 * i : 6 * i + 96] for i in range(10)])
    methods = [parse_method("identity"), External("small", Oscillate(0.05)), External("large", Oscillate(0.2))]
    means = _evaluate(moving, methods)
    assert means["identity"]["flicker"] == pytest.approx(1.0)
    assert means["large"]["flicker"] > means["small"]["flicker"] > means["identity"]["flicker"]


def test_warping_error_near_zero_on_a_translated_image(tmp_path: Path) -> None:
    from sagc.eval.methods import External, parse_method

    image = _texture(120, 160)
    clip = write_lossless(tmp_path / "pan.mkv", [np.roll(image, (i, 2 * i), axis=(0, 1)) for i in range(8)])
    means = _evaluate(clip, [parse_method("identity"), External("flicker", Oscillate(0.1))])
    assert means["identity"]["warp_error"] < 2e-4
    assert means["flicker"]["warp_error"] > 20 * means["identity"]["warp_error"]

"""PSNR and SSIM agree with scikit-image; mIoU from a hand-made confusion matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sagc.eval.metrics import confusion_matrix, flicker, iou_per_class, psnr, ssim


def _pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = (rng.random((37, 53, 3)) * 255).round().astype(np.uint8)
    noise = rng.normal(0, 12, a.shape)
    b = np.clip(a.astype(float) * 0.8 + noise + 10, 0, 255).round().astype(np.uint8)
    return a, b


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(2, 0, 1)[None].double() / 255


@pytest.mark.parametrize("seed", range(3))
def test_psnr_and_ssim_match_scikit_image(seed):
    a, b = _pair(seed)
    expected_psnr = peak_signal_noise_ratio(a, b, data_range=255)
    expected_ssim = structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1
    )
    assert float(psnr(_tensor(a), _tensor(b))) == pytest.approx(expected_psnr, abs=1e-6)
    assert float(ssim(_tensor(a), _tensor(b))) == pytest.approx(expected_ssim, abs=1e-4)


def test_identical_images():
    a, _ = _pair(0)
    assert math.isinf(float(psnr(_tensor(a), _tensor(a))))
    assert float(ssim(_tensor(a), _tensor(a))) == pytest.approx(1.0)


def test_iou_from_confusion():
    target = torch.tensor([0, 0, 1, 1, 2, 3])
    pred = torch.tensor([0, 1, 1, 1, 0, 3])
    confusion = confusion_matrix(pred, target, num_classes=3, ignore_index=3)
    assert confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    iou = iou_per_class(confusion)
    assert iou.tolist()[:2] == pytest.approx([1 / 3, 2 / 3])
    assert iou[2] == 0


def test_flicker_zero_when_static_and_grows_with_oscillation():
    steady = torch.linspace(0.2, 0.3, 20)
    assert flicker(torch.full((20,), 0.5), steady) == 0
    assert flicker(steady * 2, steady) == pytest.approx(2.0)
    wobble = torch.tensor([0.05 * (-1) ** t for t in range(20)])
    assert flicker(steady * 2 + wobble, steady) > flicker(steady * 2 + wobble / 2, steady) > 2.0

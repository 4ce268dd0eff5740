"""Still-image I/O: depth, alpha, grey and EXIF orientation survive a read → enhance → write."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from sagc.cli import main
from sagc.core.errors import SagcError
from sagc.models import load_enhancer
from sagc.stream.enhance.cpu_stage import CpuStage
from sagc.stream.media.images import read_image, require_images, write_image

RNG = np.random.default_rng(0)


@pytest.fixture
def stage(weights):
    return CpuStage(load_enhancer(weights))


def test_16bit_png_round_trip(tmp_path, stage):
    pixels = (RNG.random((37, 53, 3)) * 20000).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "in.png"), pixels)
    frame = read_image(tmp_path / "in.png")
    assert frame.rgb.dtype == np.uint16 and frame.max_value == 65535
    np.testing.assert_array_equal(frame.rgb, pixels[:, :, ::-1])
    out = write_image(tmp_path / "out.png", stage(frame))
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16 and written.shape == pixels.shape
    assert written.astype(int).mean() > pixels.astype(int).mean()
    # 16-bit precision is really used: far more distinct levels than 8 bits allow
    assert len(np.unique(written)) > 1000


def test_rgba_alpha_kept_exactly(tmp_path, stage):
    pixels = (RNG.random((20, 30, 4)) * 120).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), pixels)
    out = write_image(tmp_path / "out.png", stage(read_image(tmp_path / "in.png")))
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert written.shape == (20, 30, 4)
    np.testing.assert_array_equal(written[:, :, 3], pixels[:, :, 3])
    assert (written[:, :, :3].astype(int) >= pixels[:, :, :3].astype(int) - 1).all()


def test_grey_stays_grey(tmp_path, stage):
    pixels = (RNG.random((21, 31)) * 100).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), pixels)
    frame = read_image(tmp_path / "in.png")
    assert frame.channels == 1
    written = cv2.imread(str(write_image(tmp_path / "o.png", stage(frame))), cv2.IMREAD_UNCHANGED)
    assert written.shape == (21, 31) and written.dtype == np.uint8


def test_identity_weights_round_trip_exact(tmp_path, identity_weights):
    pixels = (RNG.random((19, 23, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), pixels)
    frame = read_image(tmp_path / "in.png")
    out = CpuStage(load_enhancer(identity_weights))(frame)
    np.testing.assert_array_equal(out.rgb, frame.rgb)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    pixels = (RNG.random((12, 20, 3)) * 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "in.png"
    image.save(path, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    np.testing.assert_array_equal(read_image(path).rgb, expected)


@pytest.mark.parametrize("ext", [".jpg", ".bmp", ".tif"])
def test_other_formats_keep_size(tmp_path, stage, ext):
    pixels = (RNG.random((17, 29, 3)) * 120).astype(np.uint8)
    cv2.imwrite(str(tmp_path / f"in{ext}"), pixels)
    out = write_image(tmp_path / f"out{ext}", stage(read_image(tmp_path / f"in{ext}")))
    assert cv2.imread(str(out)).shape == (17, 29, 3)


def test_unreadable_image(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(SagcError, match="not a readable image"):
        read_image(bad)


def test_require_images_explains_missing_and_empty_folders(tmp_path):
    with pytest.raises(SagcError, match="is not a directory"):
        require_images(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(SagcError, match=r"no images \(.png"):
        require_images(tmp_path / "empty")
    cv2.imwrite(str(tmp_path / "empty" / "b.png"), np.zeros((4, 4, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "empty" / "a.jpg"), np.zeros((4, 4, 3), np.uint8))
    assert [p.name for p in require_images(tmp_path / "empty")] == ["a.jpg", "b.png"]


def test_grey_with_alpha_stays_grey_with_alpha(tmp_path, weights):
    rng = np.random.default_rng(3)
    grey = (rng.random((48, 64)) * 90).astype(np.uint8)
    alpha = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
    Image.fromarray(np.dstack([grey, alpha]), mode="LA").save(tmp_path / "ga.png")
    assert (
        main(["enhance", str(tmp_path / "ga.png"), "-o", str(tmp_path / "out.png"), "--weights", str(weights), "-q"])
        == 0
    )
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == "LA"
        pixels = np.asarray(out)
    assert np.array_equal(pixels[:, :, 1], alpha)  # alpha untouched
    assert pixels[:, :, 0].mean() > grey.mean()  # enhanced


def test_cmyk_tiff_gains_no_alpha(tmp_path, weights):
    rng = np.random.default_rng(4)
    cmyk = (rng.random((48, 64, 4)) * 255).astype(np.uint8)
    cmyk[:, :, 3] = 180  # much black ink: a dark picture
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "ink.tif")
    assert (
        main(["enhance", str(tmp_path / "ink.tif"), "-o", str(tmp_path / "out.png"), "--weights", str(weights), "-q"])
        == 0
    )
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == "RGB"

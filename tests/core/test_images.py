"""Query images: what a photo file or upload becomes, and the errors that name it."""

import io

import numpy as np
import pytest
from PIL import Image

from vidsift.core import images
from vidsift.core.errors import ImageError
from vidsift.core.images import read_image


def jpeg_bytes(array, **save_args):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95, **save_args)
    return buffer.getvalue()


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_files_and_bytes_become_rgb_arrays(tmp_path):
    gray = np.tile(np.arange(64, dtype=np.uint8), (32, 1))  # (32, 64) one channel
    Image.fromarray(gray).save(tmp_path / "gray.png")
    from_file = read_image(tmp_path / "gray.png")
    assert from_file.shape == (32, 64, 3) and from_file.dtype == np.uint8
    assert (from_file[..., 0] == gray).all() and (from_file[..., 2] == gray).all()
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[..., 0] = 200
    assert read_image(png_bytes(rgba)).shape == (10, 20, 3)


def test_exif_orientation_is_applied():
    wide = np.zeros((20, 40, 3), np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    assert read_image(jpeg_bytes(wide, exif=exif)).shape == (40, 20, 3)


def test_errors_name_the_source(tmp_path, monkeypatch):
    with pytest.raises(ImageError, match=r"missing\.jpg: no such file"):
        read_image(tmp_path / "missing.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.jpg: empty file"):
        read_image(tmp_path / "empty.jpg")
    with pytest.raises(ImageError, match=r"upload\.png: not an image Pillow can read"):
        read_image(b"<html>hello</html>", "upload.png")
    with pytest.raises(ImageError, match=r"uploaded image: damaged image"):
        read_image(jpeg_bytes(np.zeros((64, 64, 3), np.uint8))[:200])
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageError, match=r"big\.png: 20x10 pixels is more than the 100"):
        read_image(png_bytes(np.zeros((10, 20, 3), np.uint8)), "big.png")

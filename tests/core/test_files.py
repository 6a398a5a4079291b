"""vidsift.core.files: atomic writes and result thumbnails."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vidsift.core.files import THUMBNAIL_MAX_SIDE, save_thumbnail, write_atomic


def leftovers(folder):
    return [p.name for p in folder.iterdir() if ".tmp" in p.name]


def test_write_atomic_text_bytes_and_callable(tmp_path):
    path = tmp_path / "out.txt"
    write_atomic(path, "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    write_atomic(path, b"\x00\x01raw")
    assert path.read_bytes() == b"\x00\x01raw"
    seen = []

    def writer(tmp):
        seen.append(tmp)
        np.save(open(tmp, "wb"), np.arange(3))

    npy = tmp_path / "arr.npy"
    write_atomic(npy, writer)
    assert seen[0] != npy and seen[0].parent == tmp_path  # wrote a temp file beside the target
    assert np.load(npy).tolist() == [0, 1, 2]
    assert leftovers(tmp_path) == []


def test_failing_callable_leaves_the_old_file(tmp_path):
    path = tmp_path / "index.bin"
    write_atomic(path, b"old")

    def broken(tmp):
        tmp.write_bytes(b"half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, broken)
    assert path.read_bytes() == b"old"


@pytest.mark.parametrize(("height", "width"), [(360, 640), (720, 405), (100, 120)])
def test_save_thumbnail_keeps_aspect_and_longest_side(tmp_path, height, width):
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, : width // 2] = (255, 0, 0)
    path = tmp_path / "thumbs" / "deep" / "t.jpg"  # folders are made
    save_thumbnail(image, path)
    with Image.open(path) as thumb:
        assert thumb.format == "JPEG" and thumb.mode == "RGB"
        w, h = thumb.size
        left = np.asarray(thumb)[h // 2, w // 4]
    if max(height, width) > THUMBNAIL_MAX_SIDE:
        assert max(w, h) == THUMBNAIL_MAX_SIDE == 256
    else:
        assert (h, w) == (height, width)  # never enlarged
    assert abs(w / h - width / height) < 0.02
    assert left[0] > 200 and left[1] < 60  # RGB order kept

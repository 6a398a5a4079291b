"""Query images: a photo file or uploaded bytes -> the (H, W, 3) uint8 RGB array embedders take;
and the letterbox bars around a frame too elongated for the VLM (core.vision.padded_size)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from vidsift.core.errors import ImageError

MAX_IMAGE_PIXELS = 64_000_000  # 8000x8000: far beyond any photo a query needs; blocks pixel bombs


def read_image(source: bytes | str | os.PathLike, name: str | None = None) -> np.ndarray:
    """A picture (JPEG, PNG, WebP, ... anything Pillow reads) as (H, W, 3) uint8 RGB, EXIF
    orientation applied. source: a path, or the file's bytes (then name says what it was, for
    errors). Raises ImageError naming the source when it is missing, empty, not an image, or
    larger than MAX_IMAGE_PIXELS (checked from the header, before any pixel is decoded)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(source, bytes):
        label, data = name or "uploaded image", source
    else:
        label = name or str(source)
        try:
            data = Path(source).expanduser().read_bytes()
        except FileNotFoundError:
            raise ImageError(label, "no such file") from None
        except OSError as exc:
            raise ImageError(label, f"unreadable ({exc.strerror or exc})") from None
    if not data:
        raise ImageError(label, "empty file, not an image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageError(label, f"{width}x{height} pixels is more than the "
                                        f"{MAX_IMAGE_PIXELS} a query image may have")
            rgb = ImageOps.exif_transpose(image).convert("RGB")
            return np.asarray(rgb, dtype=np.uint8)
    except UnidentifiedImageError:
        raise ImageError(label, "not an image Pillow can read (JPEG, PNG, WebP, ...)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(label, f"damaged image ({exc})") from None


def pad_centred(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, 3) uint8 -> (height, width, 3) uint8: the image centred between black bars (an odd
    pixel of bar goes below / right); the image itself when it already is height x width."""
    rows, cols = height - image.shape[0], width - image.shape[1]
    if rows < 0 or cols < 0:
        raise ValueError(f"pad_centred: {image.shape[0]}x{image.shape[1]} does not fit in "
                         f"{height}x{width}")
    if not rows and not cols:
        return image
    return np.pad(image, ((rows // 2, rows - rows // 2), (cols // 2, cols - cols // 2), (0, 0)))

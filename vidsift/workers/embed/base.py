"""The embedder interface every backend implements, and the small helpers they share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from vidsift.core.types import FrameEmbeddings


@runtime_checkable
class Embedder(Protocol):
    """Maps frames and text to unit vectors.

    visual_dim: width of embed_images() vectors (what frames look like).
    text_dim: width of embed_text() vectors and of FrameEmbeddings.text (what text queries score).
    For SigLIP/CLIP both are the shared image-text space; for the offline embedder the visual
    space is EfficientNet features and the text space is the MiniLM bridge.
    """

    name: str
    visual_dim: int
    text_dim: int

    def encode_frames(self, images: Sequence[np.ndarray]) -> FrameEmbeddings:
        """images: N arrays (H, W, 3) uint8 RGB, any sizes -> visual (N, Dv), text (N, Dt)."""
        ...

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """images: N arrays (H, W, 3) uint8 RGB -> (N, visual_dim) float32 unit vectors."""
        ...

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """M strings -> (M, text_dim) float32 unit vectors, comparable with FrameEmbeddings.text."""
        ...


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32; all-zero rows stay zero instead of becoming NaN."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def check_images(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Validate a batch: every item an (H, W, 3) uint8 array. Raises ValueError naming the item."""
    checked = []
    for i, image in enumerate(images):
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
            raise ValueError(
                f"image {i}: expected an (H, W, 3) uint8 RGB array, got {array.dtype} {array.shape}"
            )
        checked.append(array)
    return checked


def cuda_driver_devices() -> int:
    """How many CUDA devices the NVIDIA driver shows this process (0 without a driver), asked of
    libcuda itself: a process on a CPU-only node learns there is no GPU without importing torch
    (about 200 MB)."""
    import ctypes

    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when the driver shows a GPU and torch can use it, else 'cpu'; anything
    else is passed through."""
    if device != "auto":
        return device
    if cuda_driver_devices() == 0:
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"

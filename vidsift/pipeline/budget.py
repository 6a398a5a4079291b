"""Visual-token arithmetic of the VLM, and the allocation of a token budget over segments.

Qwen2.5-VL (as in qwen-vl-utils and transformers' Qwen2VLImageProcessor):
- an image or frame is resized by smart_resize to H x W, both multiples of FACTOR = 28
  (patch 14 x spatial merge 2), with min_pixels <= H*W <= max_pixels, keeping the aspect ratio;
- it is cut into 14 x 14 patches and every 2 x 2 patches merge into ONE token, so a frame costs
  (H / 28) * (W / 28) tokens;
- frames are grouped two by two in time (temporal patch 2): a clip of T frames costs
  ceil(T / 2) * (H / 28) * (W / 28) tokens (an odd T is padded by repeating the last frame), and
  a still image costs as much as one temporal patch: (H / 28) * (W / 28).

Everything here is pure integer arithmetic: no models, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PATCH_SIZE = 14  # pixels per side of a vision patch
MERGE_SIZE = 2  # patches per side merged into one LLM token
FACTOR = PATCH_SIZE * MERGE_SIZE  # 28: H and W are multiples of this
TEMPORAL_PATCH_SIZE = 2  # frames per temporal patch
MAX_ASPECT_RATIO = 200
# HF Qwen2VLImageProcessor defaults (images): 56*56 .. 28*28*1280 pixels.
IMAGE_MIN_PIXELS = 56 * 56
IMAGE_MAX_PIXELS = 28 * 28 * 1280
# qwen-vl-utils defaults for video frames.
VIDEO_MIN_PIXELS = 128 * 28 * 28
VIDEO_MAX_PIXELS = 768 * 28 * 28


@dataclass(frozen=True, slots=True)
class VisionSpec:
    """The token arithmetic of one VLM family; Qwen2.5-VL's by default."""

    patch_size: int = PATCH_SIZE
    merge_size: int = MERGE_SIZE
    temporal_patch_size: int = TEMPORAL_PATCH_SIZE

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size


QWEN2_5_VL = VisionSpec()
VISION_SPECS = {"qwen2_5_vl": QWEN2_5_VL}


def round_by_factor(number: float, factor: int) -> int:
    return round(number / factor) * factor


def ceil_by_factor(number: float, factor: int) -> int:
    return math.ceil(number / factor) * factor


def floor_by_factor(number: float, factor: int) -> int:
    return math.floor(number / factor) * factor


def smart_resize(
    height: int,
    width: int,
    factor: int = FACTOR,
    min_pixels: int = IMAGE_MIN_PIXELS,
    max_pixels: int = IMAGE_MAX_PIXELS,
) -> tuple[int, int]:
    """(height, width) in pixels -> the model's input (height, width): multiples of `factor`,
    area within [min_pixels, max_pixels], aspect ratio kept as closely as the grid allows.

    Identical to transformers' Qwen2-VL smart_resize, so token counts match the processor's.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"smart_resize: size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"smart_resize: aspect ratio must be below {MAX_ASPECT_RATIO}, got {height}x{width}"
        )
    h_bar = round_by_factor(height, factor)
    w_bar = round_by_factor(width, factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, floor_by_factor(height / beta, factor))
        w_bar = max(factor, floor_by_factor(width / beta, factor))
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = ceil_by_factor(height * beta, factor)
        w_bar = ceil_by_factor(width * beta, factor)
    return max(h_bar, factor), max(w_bar, factor)


def grid_thw(
    num_frames: int, height: int, width: int, spec: VisionSpec = QWEN2_5_VL
) -> tuple[int, int, int]:
    """Patch grid (t, h, w) the vision encoder sees for `num_frames` frames of height x width
    pixels (already multiples of spec.factor). A still image is num_frames = 1."""
    if height % spec.factor or width % spec.factor:
        raise ValueError(f"grid_thw: {height}x{width} is not a multiple of {spec.factor}")
    if num_frames < 1:
        raise ValueError("grid_thw: need at least one frame")
    grid_t = math.ceil(num_frames / spec.temporal_patch_size)
    return grid_t, height // spec.patch_size, width // spec.patch_size


def tokens_for(num_frames: int, height: int, width: int, spec: VisionSpec = QWEN2_5_VL) -> int:
    """LLM visual tokens for `num_frames` frames (1 = a still image) at height x width pixels."""
    t, h, w = grid_thw(num_frames, height, width, spec)
    return t * h * w // (spec.merge_size**2)

"""vidsift's own pixel preparation for the Qwen-VL vision towers (Qwen2.5-VL, Qwen3-VL).

vidsift decides every frame's size itself (the budget), and transformers' video processors need
torchvision, so the patches are built here: resize to the planned (height, width) with PIL bicubic
(as HF's image processor does; a frame too elongated for the model letterboxed, see resize_frame), rescale by 1/255 and normalize with the checkpoint's mean/std
(its core.vision.VisionSpec; same float64-then-float32 steps as HF, so values are bit-identical),
then cut into patches in the exact order the vision tower reads them.

Layout (Qwen2-VL family): a clip of T frames at H x W pixels, padded to a multiple of the temporal
patch (tp = 2) by repeating its last frame, becomes a grid (t, h, w) = (ceil(T / tp), H / ps, W / ps)
of patches (ps = 14 for Qwen2.5-VL, 16 for Qwen3-VL), flattened to rows of C * tp * ps * ps values; rows are ordered by t, then by
2 x 2 merge window (row-major), then inside the window. A still image is one frame repeated to
the temporal patch, so its grid is (1, H / ps, W / ps). Qwen3-VL's video processor cuts and
orders patches the same way (checked against its code; its tensors need torchvision, so the
video path itself is compared on a GPU machine) and tags each temporal patch with the mean time
of its first and last frame (patch_times).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vidsift.core.errors import TokenCountError
from vidsift.core.images import pad_centred
from vidsift.core.types import PlannedSegment
from vidsift.core.vision import VisionSpec, content_size


@dataclass(slots=True, eq=False)
class SegmentPixels:
    """One segment ready for the vision tower.

    patches: (t * h * w, C * tp * ps * ps) float32.
    grid_thw: (t, h, w) patch grid. tokens: LLM tokens the vision tower makes of it,
    t * h * w / merge_size**2. is_video: shown as a clip (else a still image).
    second_per_grid: seconds spanned by one temporal patch (clips; 0.0 for images).
    patch_times: per temporal patch, the mean of its first and last frame's time in seconds
    (the padding frame repeats the last), as Qwen3-VL's processor stamps them; (t,) values.
    """

    patches: np.ndarray
    grid_thw: tuple[int, int, int]
    tokens: int
    is_video: bool
    second_per_grid: float
    patch_times: tuple[float, ...]


def resize_frame(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (height, width, 3) uint8 with PIL bicubic; unchanged if already sized.
    A frame more elongated than core.vision.MAX_ASPECT_RATIO is letterboxed as the decoders do
    it: resized to its content_size inside height x width, centred between black bars."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    from PIL import Image

    inner_h, inner_w = content_size(image.shape[:2], (height, width))
    resized = Image.fromarray(np.ascontiguousarray(image)).resize((inner_w, inner_h), Image.BICUBIC)
    return pad_centred(np.asarray(resized), height, width)


def normalize(frames: np.ndarray, spec: VisionSpec) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float32: x * rescale_factor, then (x - mean) / std."""
    scaled = (frames.astype(np.float64) * spec.rescale_factor).astype(np.float32)
    mean = np.asarray(spec.image_mean, dtype=np.float32)
    std = np.asarray(spec.image_std, dtype=np.float32)
    return np.ascontiguousarray(((scaled - mean) / std).transpose(0, 3, 1, 2))


def patchify(frames: np.ndarray, spec: VisionSpec) -> tuple[np.ndarray, tuple[int, int, int]]:
    """(T, C, H, W) float32 normalized frames -> (patches (t*h*w, C*tp*ps*ps), grid (t, h, w)).

    T is padded up to a multiple of the temporal patch by repeating the last frame.
    """
    num_frames, channels, height, width = frames.shape
    ps, tp, m = spec.patch_size, spec.temporal_patch_size, spec.merge_size
    if height % spec.factor or width % spec.factor:
        raise ValueError(f"patchify: {height}x{width} is not a multiple of {spec.factor}")
    if pad := -num_frames % tp:
        frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)], axis=0)
    grid_t, grid_h, grid_w = frames.shape[0] // tp, height // ps, width // ps
    patches = frames.reshape(grid_t, tp, channels, grid_h // m, m, ps, grid_w // m, m, ps)
    patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    flat = patches.reshape(grid_t * grid_h * grid_w, channels * tp * ps * ps)
    return np.ascontiguousarray(flat), (grid_t, grid_h, grid_w)


def prepare_frames(
    images: list[np.ndarray], height: int, width: int, spec: VisionSpec
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """RGB uint8 frames (any size) -> patches and grid at height x width. One frame = an image."""
    if not images:
        raise ValueError("prepare_frames: no frames")
    stacked = np.stack([resize_frame(image, height, width) for image in images])
    return patchify(normalize(stacked, spec), spec)


def prepare_segment(segment: PlannedSegment, spec: VisionSpec) -> SegmentPixels:
    """A planned segment with its decoded frames -> pixels for the vision tower.

    A segment with two or more frames is a clip (second_per_grid = temporal patch / its fps);
    a single frame is a still image.
    """
    if not segment.frames:
        raise ValueError(
            f"segment {segment.start:.3f}-{segment.end:.3f} s has no decoded frames "
            "(run the fine decode pass before the VLM)"
        )
    patches, grid = prepare_frames(
        [frame.image for frame in segment.frames], segment.height, segment.width, spec
    )
    is_video = len(segment.frames) >= 2
    second_per_grid = 0.0
    if is_video:
        pts = [frame.pts for frame in segment.frames]
        span = pts[-1] - pts[0]
        fps = (len(pts) - 1) / span if span > 0 else 1.0
        second_per_grid = spec.temporal_patch_size / fps
    tokens = math.prod(grid) // spec.merge_size**2
    return SegmentPixels(patches, grid, tokens, is_video, second_per_grid,
                         temporal_patch_times([frame.pts for frame in segment.frames], spec))


def temporal_patch_times(pts: list[float], spec: VisionSpec) -> tuple[float, ...]:
    """Frame times (seconds, in order) -> one time per temporal patch: the mean of the patch's
    first and last frame, the list padded like the frames (last time repeated)."""
    tp = spec.temporal_patch_size
    padded = list(pts) + [pts[-1]] * (-len(pts) % tp)
    return tuple((padded[i] + padded[i + tp - 1]) / 2 for i in range(0, len(padded), tp))


def check_planned_tokens(segments: list[PlannedSegment], pixels: list[SegmentPixels]) -> None:
    """Raise TokenCountError unless each segment's pixels encode to exactly the visual tokens its
    plan counted (PlannedSegment.tokens): the budget's promise that a request costs
    TokenSet.total_tokens holds only if the model sees what was planned."""
    planned_total = sum(segment.tokens for segment in segments)
    encoded_total = sum(segment_pixels.tokens for segment_pixels in pixels)
    for index, (segment, segment_pixels) in enumerate(zip(segments, pixels)):
        if segment_pixels.tokens != segment.tokens:
            raise TokenCountError(
                f"segment {index} ({segment.start:.3f}-{segment.end:.3f} s, "
                f"{len(segment.frames)} frames at {segment.height}x{segment.width}) encodes to "
                f"{segment_pixels.tokens} visual tokens but the plan counted {segment.tokens} "
                f"(request: {encoded_total} encoded, {planned_total} planned)"
            )


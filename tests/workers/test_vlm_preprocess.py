"""vidsift's pixel preparation against HF's slow (PIL) Qwen2-VL image processor, and the clip
layout the vision tower expects."""

from __future__ import annotations

import numpy as np
import pytest

from vidsift.pipeline.budget import VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS, grid_thw, smart_resize
from vidsift.core.types import Frame, PlannedSegment, SegmentKind
from vidsift.workers.vlm.preprocess import PixelSpec, prepare_frames, prepare_segment


def _hf_processor(min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)


def _image(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("height,width", [(56, 84), (112, 56), (28 * 5, 28 * 9)])
def test_sized_image_is_identical_to_hf(height, width):
    image = _image(height, width, seed=height + width)
    expected = _hf_processor()(images=[image], return_tensors="np")
    patches, grid = prepare_frames([image], height, width, PixelSpec())
    assert grid == tuple(expected["image_grid_thw"][0]) == grid_thw(1, height, width)
    assert patches.dtype == np.float32
    np.testing.assert_array_equal(patches, expected["pixel_values"])


def test_resized_image_is_identical_to_hf():
    """An unaligned 97x171 frame resized to the budget's size (video min/max pixels)."""
    image = _image(97, 171, seed=1)
    height, width = smart_resize(97, 171, min_pixels=VIDEO_MIN_PIXELS, max_pixels=VIDEO_MAX_PIXELS)
    expected = _hf_processor(VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS)(images=[image], return_tensors="np")
    patches, grid = prepare_frames([image], height, width, PixelSpec())
    assert grid == tuple(expected["image_grid_thw"][0]) == (1, height // 14, width // 14)
    np.testing.assert_array_equal(patches, expected["pixel_values"])


def test_clip_layout_interleaves_frames_inside_each_patch():
    """A two-frame clip: each row holds patch p of frame 0 then of frame 1 (C, tp, 14, 14)."""
    first, second = _image(56, 84, seed=2), _image(56, 84, seed=3)
    spec = PixelSpec()
    clip, grid = prepare_frames([first, second], 56, 84, spec)
    image_first, _ = prepare_frames([first], 56, 84, spec)
    image_second, _ = prepare_frames([second], 56, 84, spec)
    assert grid == (1, 4, 6)
    rows = clip.reshape(-1, 3, 2, 14, 14)
    np.testing.assert_array_equal(rows[:, :, 0], image_first.reshape(-1, 3, 2, 14, 14)[:, :, 0])
    np.testing.assert_array_equal(rows[:, :, 1], image_second.reshape(-1, 3, 2, 14, 14)[:, :, 1])


def test_odd_clip_repeats_its_last_frame():
    frames = [_image(56, 56, seed=s) for s in range(3)]
    spec = PixelSpec()
    clip, grid = prepare_frames(frames, 56, 56, spec)
    tail, _ = prepare_frames([frames[2], frames[2]], 56, 56, spec)
    assert grid == grid_thw(3, 56, 56) == (2, 4, 4)
    np.testing.assert_array_equal(clip[16:], tail)


def test_segment_timing_and_missing_frames():
    frames = tuple(Frame(_image(56, 56, seed=i), 10.0 + 0.5 * i, 250 + i) for i in range(4))
    clip = PlannedSegment(SegmentKind.CLIP, 10.0, 11.5, tuple(f.pts for f in frames), 56, 56, 8,
                          frames=frames)
    pixels = prepare_segment(clip, PixelSpec())
    assert pixels.is_video and pixels.grid_thw == (2, 4, 4)
    assert pixels.second_per_grid == pytest.approx(1.0)  # 2 fps, 2 frames per temporal patch
    empty = PlannedSegment(SegmentKind.IMAGE, 3.0, 3.0, (3.0,), 56, 56, 4)
    with pytest.raises(ValueError, match="3.000-3.000 s has no decoded frames"):
        prepare_segment(empty, PixelSpec())


def test_pixel_spec_reads_the_checkpoint(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(
        '{"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "patch_size": 14,'
        ' "temporal_patch_size": 2, "merge_size": 2}'
    )
    spec = PixelSpec.from_pretrained(str(tmp_path))
    assert spec.image_mean == (0.5, 0.5, 0.5) and spec.image_std == (0.25, 0.25, 0.25)
    assert spec.factor == 28

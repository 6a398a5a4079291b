"""vidsift's pixel preparation against HF's slow (PIL) Qwen2-VL image processor (as Qwen2.5-VL
and Qwen3-VL configure it), and the clip layout and times the vision towers expect (Qwen3-VL's
against its video processor's own patchify and timestamps)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vidsift.core.errors import TokenCountError
from vidsift.core.types import Frame, PlannedSegment, SegmentKind
from vidsift.core.vision import (
    QWEN2_5_VL,
    QWEN3_VL,
    VIDEO_MAX_PIXELS,
    VIDEO_MIN_PIXELS,
    grid_thw,
    smart_resize,
    tokens_for,
)
from vidsift.workers.vlm.preprocess import (
    check_planned_tokens,
    normalize,
    prepare_frames,
    prepare_segment,
    resize_frame,
    temporal_patch_times,
)

from tests.tiny_vlm import hf_image_processor


def _image(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _clip() -> PlannedSegment:
    """Four 56x56 frames at 2 fps from 10.0 s: two temporal patches of 4 tokens each."""
    frames = tuple(Frame(_image(56, 56, seed=i), 10.0 + 0.5 * i, 250 + i) for i in range(4))
    return PlannedSegment(SegmentKind.CLIP, 10.0, 11.5, tuple(f.pts for f in frames), 56, 56, 8,
                          frames=frames)


@pytest.mark.parametrize("height,width", [(56, 84), (112, 56), (28 * 5, 28 * 9)])
def test_sized_image_is_identical_to_hf(height, width):
    image = _image(height, width, seed=height + width)
    expected = hf_image_processor()(images=[image], return_tensors="np")
    patches, grid = prepare_frames([image], height, width, QWEN2_5_VL)
    assert grid == tuple(expected["image_grid_thw"][0]) == grid_thw(1, height, width)
    assert patches.dtype == np.float32
    np.testing.assert_array_equal(patches, expected["pixel_values"])


def test_resized_image_is_identical_to_hf():
    """An unaligned 97x171 frame resized to the budget's size (video min/max pixels)."""
    image = _image(97, 171, seed=1)
    height, width = smart_resize(97, 171, min_pixels=VIDEO_MIN_PIXELS, max_pixels=VIDEO_MAX_PIXELS)
    expected = hf_image_processor(VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS)(images=[image], return_tensors="np")
    patches, grid = prepare_frames([image], height, width, QWEN2_5_VL)
    assert grid == tuple(expected["image_grid_thw"][0]) == (1, height // 14, width // 14)
    np.testing.assert_array_equal(patches, expected["pixel_values"])


def test_a_frame_too_elongated_for_the_model_is_letterboxed_to_its_planned_size():
    """A 16 x 16000 frame (aspect 1000) at the 28 x 5600 the plan sized from its letterboxed
    80 x 16000: resized into the middle 6 rows (16 * 28 / 80), black bars above and below, and
    it encodes to the planned 200 tokens exactly as HF's processor encodes the letterboxed
    frame (which it refuses unpadded)."""
    from PIL import Image

    frame = _image(16, 16000, seed=7)
    resized = resize_frame(frame, 28, 5600)
    assert resized.shape == (28, 5600, 3)
    assert not resized[:11].any() and not resized[17:].any()
    content = np.asarray(Image.fromarray(frame).resize((5600, 6), Image.BICUBIC))
    np.testing.assert_array_equal(resized[11:17], content)
    patches, grid = prepare_frames([frame], 28, 5600, QWEN2_5_VL)
    assert grid == (1, 2, 400) and tokens_for(1, 28, 5600) == 200
    expected = hf_image_processor(VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS)(images=[resized],
                                                                      return_tensors="np")
    np.testing.assert_array_equal(patches, expected["pixel_values"])


def test_clip_layout_interleaves_frames_inside_each_patch():
    """A two-frame clip: each row holds patch p of frame 0 then of frame 1 (C, tp, 14, 14)."""
    first, second = _image(56, 84, seed=2), _image(56, 84, seed=3)
    clip, grid = prepare_frames([first, second], 56, 84, QWEN2_5_VL)
    image_first, _ = prepare_frames([first], 56, 84, QWEN2_5_VL)
    image_second, _ = prepare_frames([second], 56, 84, QWEN2_5_VL)
    assert grid == (1, 4, 6)
    rows = clip.reshape(-1, 3, 2, 14, 14)
    np.testing.assert_array_equal(rows[:, :, 0], image_first.reshape(-1, 3, 2, 14, 14)[:, :, 0])
    np.testing.assert_array_equal(rows[:, :, 1], image_second.reshape(-1, 3, 2, 14, 14)[:, :, 1])


def test_odd_clip_repeats_its_last_frame():
    frames = [_image(56, 56, seed=s) for s in range(3)]
    clip, grid = prepare_frames(frames, 56, 56, QWEN2_5_VL)
    tail, _ = prepare_frames([frames[2], frames[2]], 56, 56, QWEN2_5_VL)
    assert grid == grid_thw(3, 56, 56) == (2, 4, 4)
    np.testing.assert_array_equal(clip[16:], tail)


def test_segment_timing_and_missing_frames():
    clip = _clip()
    pixels = prepare_segment(clip, QWEN2_5_VL)
    assert pixels.is_video and pixels.grid_thw == (2, 4, 4)
    assert pixels.second_per_grid == pytest.approx(1.0)  # 2 fps, 2 frames per temporal patch
    empty = PlannedSegment(SegmentKind.IMAGE, 3.0, 3.0, (3.0,), 56, 56, 4)
    with pytest.raises(ValueError, match="3.000-3.000 s has no decoded frames"):
        prepare_segment(empty, QWEN2_5_VL)


def test_planned_tokens_must_be_what_the_pixels_encode():
    clip = _clip()
    pixels = [prepare_segment(clip, QWEN2_5_VL)]
    assert pixels[0].tokens == 8
    check_planned_tokens([clip], pixels)
    overplanned = dataclasses.replace(clip, tokens=12)
    with pytest.raises(TokenCountError, match=r"segment 0 .* 8 visual tokens but the plan counted 12"
                       r" \(request: 8 encoded, 12 planned\)"):
        check_planned_tokens([overplanned], pixels)


@pytest.mark.parametrize("height,width", [(64, 96), (128, 64), (32 * 5, 32 * 9)])
def test_qwen3_sized_image_is_identical_to_hf(height, width):
    image = _image(height, width, seed=height * width)
    expected = hf_image_processor(spec=QWEN3_VL)(images=[image], return_tensors="np")
    patches, grid = prepare_frames([image], height, width, QWEN3_VL)
    assert grid == tuple(expected["image_grid_thw"][0]) == (1, height // 16, width // 16)
    assert patches.shape[1] == 3 * 2 * 16 * 16
    np.testing.assert_array_equal(patches, expected["pixel_values"])


def test_qwen3_resized_image_is_identical_to_hf():
    """An unaligned 97x171 frame resized to the budget's size (multiples of 32): the very pixels
    of HF's Qwen3-VL image processor."""
    image = _image(97, 171, seed=4)
    height, width = smart_resize(97, 171, QWEN3_VL.factor, VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS)
    processor = hf_image_processor(VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS, QWEN3_VL)
    expected = processor(images=[image], return_tensors="np")
    patches, grid = prepare_frames([image], height, width, QWEN3_VL)
    assert grid == tuple(expected["image_grid_thw"][0]) == (1, height // 16, width // 16)
    np.testing.assert_array_equal(patches, expected["pixel_values"])


def test_qwen3_clip_is_cut_as_its_video_processor_cuts_it():
    """Three frames (odd: the last repeats) cut by transformers' Qwen3VLVideoProcessor.patchify
    (pure torch; the rest of that processor needs torchvision) from the same normalized frames."""
    import torch
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    frames = [_image(64, 96, seed=10 + i) for i in range(3)]
    patches, grid = prepare_frames(frames, 64, 96, QWEN3_VL)
    videos = torch.from_numpy(normalize(np.stack(frames), QWEN3_VL))[None]
    expected, *expected_grid = Qwen3VLVideoProcessor().patchify(
        videos, patch_size=16, merge_size=2, temporal_patch_size=2)
    assert grid == tuple(expected_grid) == (2, 4, 6)
    np.testing.assert_array_equal(patches, expected[0].numpy())


def test_patch_times_are_qwen3_processor_timestamps():
    """Frames 4, 5, 6 of a 2 fps sampling: HF's per-temporal-patch timestamps (first and last
    frame averaged, the last index repeated to fill the patch) are vidsift's patch_times."""
    from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor

    indices, fps = [4, 5, 6], 2.0
    expected = Qwen3VLProcessor._calculate_timestamps(None, list(indices), fps, 2)
    assert temporal_patch_times([i / fps for i in indices], QWEN3_VL) == tuple(expected)
    assert expected == [2.25, 3.0]
    clip = prepare_segment(_clip(), QWEN2_5_VL)  # frames at 10.0, 10.5, 11.0, 11.5 s
    assert clip.patch_times == (10.25, 11.25)

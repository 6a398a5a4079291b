"""The token arithmetic of core.vision against transformers' Qwen2-VL image processor (as
Qwen2.5-VL and Qwen3-VL configure it), and the VisionSpec a checkpoint's preprocessor_config.json
yields."""

import json
import subprocess
import sys

import numpy as np
import pytest

from vidsift.core.errors import ConfigError
from vidsift.core.vision import (
    QWEN2_5_VL,
    QWEN3_VL,
    VIDEO_MAX_PIXELS,
    VIDEO_MIN_PIXELS,
    VISION_SPECS,
    VisionSpec,
    check_checkpoint_spec,
    content_size,
    grid_thw,
    padded_size,
    smart_resize,
    tokens_for,
)

from tests.tiny_vlm import (
    FRAME_SIZES,
    PREPROCESSOR_CONFIG,
    QWEN3_PREPROCESSOR_CONFIG,
    hf_image_processor,
    hf_image_tokens,
)

MIN_PX, MAX_PX = VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS


def test_tokens_for_matches_the_hf_processor_on_many_sizes():
    rng = np.random.default_rng(0)
    sizes = FRAME_SIZES + [tuple(int(v) for v in rng.integers(30, 2000, 2)) for _ in range(20)]
    images = [np.zeros((h, w, 3), np.uint8) for h, w in sizes]
    expected = [tokens_for(1, *smart_resize(h, w, QWEN2_5_VL.factor, MIN_PX, MAX_PX)) for h, w in sizes]
    assert hf_image_tokens(hf_image_processor(MIN_PX, MAX_PX), images) == expected


@pytest.mark.parametrize("min_px,max_px", [
    (MIN_PX, MAX_PX),
    # Qwen3-VL-8B-Instruct's own image range
    (QWEN3_PREPROCESSOR_CONFIG["size"]["shortest_edge"], QWEN3_PREPROCESSOR_CONFIG["size"]["longest_edge"]),
])
def test_qwen3_tokens_match_the_hf_processor_on_many_sizes(min_px, max_px):
    """Patch 16 x merge 2: sizes are multiples of 32 and a frame costs (H / 32) * (W / 32)."""
    rng = np.random.default_rng(1)
    sizes = FRAME_SIZES + [tuple(int(v) for v in rng.integers(30, 1200, 2)) for _ in range(8)]
    images = [np.zeros((h, w, 3), np.uint8) for h, w in sizes]
    resized = [smart_resize(h, w, QWEN3_VL.factor, min_px, max_px) for h, w in sizes]
    assert all(h % 32 == 0 and w % 32 == 0 for h, w in resized)
    expected = [tokens_for(1, h, w, QWEN3_VL) for h, w in resized]
    assert hf_image_tokens(hf_image_processor(min_px, max_px, QWEN3_VL), images) == expected
    assert tokens_for(1, 704, 1280, QWEN3_VL) == 22 * 40 == tokens_for(2, 704, 1280, QWEN3_VL)


def test_clip_tokens_follow_the_video_grid_math():
    # transformers' video processor needs torchvision (not installable here): its grid is
    # t = ceil(frames / 2) (an odd count repeats the last frame), h = H / 14, w = W / 14,
    # tokens = t * h * w / 4 (checked against Qwen2VLVideoProcessor.patchify's source).
    assert grid_thw(7, 448, 812) == (4, 32, 58)
    assert tokens_for(7, 448, 812) == 4 * 32 * 58 // 4 == tokens_for(8, 448, 812)
    assert tokens_for(1, 448, 812) == tokens_for(2, 448, 812)


def test_arithmetic_follows_the_spec():
    coarse = VisionSpec(patch_size=16, merge_size=2, temporal_patch_size=4)
    assert coarse.factor == 32
    assert grid_thw(5, 64, 96, coarse) == (2, 4, 6)
    assert tokens_for(5, 64, 96, coarse) == 2 * 4 * 6 // 4
    with pytest.raises(ValueError, match="not a multiple of 32"):
        grid_thw(1, 56, 56, coarse)


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="positive"):
        smart_resize(0, 100)
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 2500)
    with pytest.raises(ValueError, match="at least one frame"):
        grid_thw(0, 56, 56)


def test_a_frame_too_elongated_for_the_processor_is_sized_letterboxed():
    """HF's processor refuses a frame 16 high and 16000 wide (aspect 1000, over 200); padded to
    80 high with black bars it takes it, at vidsift's size and token count for the padded size."""
    processor = hf_image_processor(MIN_PX, MAX_PX)
    with pytest.raises(ValueError, match="aspect ratio"):
        processor(images=[np.zeros((16, 16000, 3), np.uint8)], return_tensors="np")
    assert padded_size(16, 16000) == (80, 16000) and padded_size(16000, 16) == (16000, 80)
    assert padded_size(1, 201) == (2, 201)
    for within in [(16, 3200), (720, 1280), (1, 200)]:
        assert padded_size(*within) == within
    size = smart_resize(*padded_size(16, 16000), QWEN2_5_VL.factor, MIN_PX, MAX_PX)
    padded = np.zeros((*padded_size(16, 16000), 3), np.uint8)
    assert hf_image_tokens(processor, [padded]) == [tokens_for(1, *size)]
    # the frame's own pixels inside a planned input: each side scaled as its padded frame is
    assert content_size((16, 16000), (28, 5600)) == (6, 5600)  # 16 * 28 / 80 = 5.6 rows
    assert content_size((16000, 16), (5600, 28)) == (5600, 6)
    assert content_size((720, 1280), (336, 588)) == (336, 588)  # no bars within the ratio
    with pytest.raises(ValueError, match="positive"):
        padded_size(0, 10)


def test_spec_reads_the_checkpoint(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(
        '{"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "patch_size": 16,'
        ' "temporal_patch_size": 2, "merge_size": 2}'
    )
    spec = VisionSpec.from_pretrained(str(tmp_path))
    assert spec.image_mean == (0.5, 0.5, 0.5) and spec.image_std == (0.25, 0.25, 0.25)
    assert (spec.patch_size, spec.factor, spec.rescale_factor) == (16, 32, 1 / 255)


def test_qwen_checkpoint_config_is_the_family_spec(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG))
    assert VisionSpec.from_pretrained(str(tmp_path)) == VISION_SPECS["qwen2_5_vl"] == QWEN2_5_VL


def test_qwen3_checkpoint_config_is_the_family_spec(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(QWEN3_PREPROCESSOR_CONFIG))
    spec = VisionSpec.from_pretrained(str(tmp_path), QWEN3_VL)
    assert spec == VISION_SPECS["qwen3_vl"] == QWEN3_VL
    assert (spec.factor, spec.image_mean, spec.image_std) == (32, (0.5,) * 3, (0.5,) * 3)
    # Fields a checkpoint leaves out are its family's, not Qwen2.5-VL's.
    (tmp_path / "preprocessor_config.json").write_text('{"patch_size": 16}')
    assert VisionSpec.from_pretrained(str(tmp_path), QWEN3_VL) == QWEN3_VL


def test_checkpoint_of_another_geometry_is_a_config_error():
    check_checkpoint_spec("qwen2_5_vl", VisionSpec(image_mean=(0.5, 0.5, 0.5)), "ckpt")
    with pytest.raises(ConfigError, match=r"ckpt: .*\(14, 2, 4\) differs .* \(14, 2, 2\)"):
        check_checkpoint_spec("qwen2_5_vl", VisionSpec(temporal_patch_size=4), "ckpt")


def test_importing_the_spec_loads_no_model_library():
    code = ("import sys, vidsift.core.vision; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

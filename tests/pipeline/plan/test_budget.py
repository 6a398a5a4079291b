import math

import numpy as np
import pytest

from vidsift.core.errors import BudgetError
from vidsift.core.types import Segment, SegmentKind
from vidsift.core.vision import QWEN2_5_VL, VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS, smart_resize, tokens_for
from vidsift.pipeline.plan.budget import allocate, frame_grids

from tests.tiny_vlm import FRAME_SIZES, hf_image_processor, hf_image_tokens

MIN_PX, MAX_PX = VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS
FACTOR = QWEN2_5_VL.factor


def image(t, weight=1.0, score=0.0):
    return Segment(t, t, SegmentKind.IMAGE, score=score, weight=weight)


def clip(a, b, weight=1.0, score=0.0):
    return Segment(a, b, SegmentKind.CLIP, score=score, weight=weight)


def test_planned_sizes_are_kept_by_the_processor_and_cost_what_the_plan_says():
    segments = [image(1.0, 0.2), image(5.0, 0.5), image(9.0, 0.3)]
    plan = allocate(segments, 1500, (720, 1280), MIN_PX, MAX_PX, clip_fps=2.0)
    images = [np.zeros((s.height, s.width, 3), np.uint8) for s in plan.segments]
    processor = hf_image_processor(MIN_PX, MAX_PX)
    out = processor(images=images, return_tensors="np", input_data_format="channels_last")
    assert [tuple(g) for g in out["image_grid_thw"]] == [
        (1, s.height // 14, s.width // 14) for s in plan.segments
    ]
    assert hf_image_tokens(processor, images) == [s.tokens for s in plan.segments]


@pytest.mark.parametrize("frame_size", FRAME_SIZES)
def test_grids_are_fixed_points_of_smart_resize(frame_size):
    grids = frame_grids(frame_size, MIN_PX, MAX_PX)
    assert grids
    native = smart_resize(*frame_size, FACTOR, MIN_PX, MAX_PX)
    costs = [r * c for r, c in grids]
    assert costs == sorted(set(costs))
    for rows, cols in grids:
        size = (rows * FACTOR, cols * FACTOR)
        assert smart_resize(*size, FACTOR, MIN_PX, MAX_PX) == size
        assert MIN_PX <= size[0] * size[1] <= MAX_PX
    assert costs[-1] <= max(costs[0], native[0] * native[1] // FACTOR**2)


@pytest.mark.parametrize("budget", [144, 300, 1000, 2048, 4096, 7777, 16384])
@pytest.mark.parametrize("frame_size", [(720, 1280), (1080, 1920), (1280, 720), (480, 854)])
def test_total_is_the_budget_within_one_row_and_never_above(budget, frame_size):
    segments = [image(3.0, 0.1), clip(10.0, 14.0, 0.5), image(20.0, 0.3), clip(30, 33, 0.1)]
    plan = allocate(segments, budget, frame_size, MIN_PX, MAX_PX, clip_fps=2.0)
    grids = frame_grids(frame_size, MIN_PX, MAX_PX)
    costs = [r * c for r, c in grids]
    leftover = budget - plan.total_tokens
    assert 0 <= leftover
    assert plan.budget == budget
    for seg in plan.segments:
        patches = math.ceil(len(seg.timestamps) / 2)
        assert seg.tokens == tokens_for(len(seg.timestamps), seg.height, seg.width)
        cost = seg.tokens // patches
        assert MIN_PX <= seg.height * seg.width <= MAX_PX
        # no segment could take a larger size with what is left
        bigger = [c for c in costs if c > cost]
        if bigger:
            assert patches * (bigger[0] - cost) > leftover
            assert leftover < patches * max(seg.height, seg.width) // FACTOR


def test_relevance_decides_the_shares():
    segments = [image(1.0, 0.05), image(2.0, 0.9), image(3.0, 0.05)]
    plan = allocate(segments, 1200, (720, 1280), MIN_PX, MAX_PX, clip_fps=2.0)
    low, high, low2 = (s.tokens for s in plan.segments)
    assert high > low and high > low2
    assert plan.segments[1].tokens <= 720  # the cap: what smart_resize makes of 720p at max_pixels


def test_a_clip_buys_length_before_resolution():
    small = allocate([clip(10.0, 14.0)], 300, (720, 1280), MIN_PX, MAX_PX, clip_fps=2.0)
    large = allocate([clip(10.0, 14.0)], 4000, (720, 1280), MIN_PX, MAX_PX, clip_fps=2.0)
    floor = frame_grids((720, 1280), MIN_PX, MAX_PX)[0]
    (s,), (l,) = small.segments, large.segments
    assert len(s.timestamps) == 4 and (s.height // FACTOR) * (s.width // FACTOR) < 2 * floor[0] * floor[1]
    assert len(l.timestamps) == 8  # 4 s at 2 fps: full length
    assert l.height * l.width > s.height * s.width
    assert all(10.0 < t < 14.0 for t in l.timestamps)
    assert list(l.timestamps) == sorted(l.timestamps)
    assert l.timestamps == pytest.approx(tuple(10.25 + 0.5 * k for k in range(8)))


def test_image_timestamp_is_its_pts_and_order_is_by_time():
    plan = allocate([image(9.0), clip(4.0, 6.0), image(1.5)], 2000, (720, 1280), MIN_PX, MAX_PX, 2.0)
    assert [s.start for s in plan.segments] == [1.5, 4.0, 9.0]
    assert plan.segments[0].timestamps == (1.5,)


def test_small_video_is_not_upscaled_beyond_its_processor_size():
    plan = allocate([image(1.0), image(2.0)], 8192, (240, 320), MIN_PX, MAX_PX, 2.0)
    native = smart_resize(240, 320, FACTOR, MIN_PX, MAX_PX)
    assert all(s.height * s.width <= native[0] * native[1] for s in plan.segments)
    assert plan.total_tokens < 8192


def test_caps_bound_the_total_when_the_budget_is_generous():
    plan = allocate([image(1.0)], 100_000, (1080, 1920), MIN_PX, MAX_PX, 2.0)
    (seg,) = plan.segments
    largest = frame_grids((1080, 1920), MIN_PX, MAX_PX)[-1]
    assert seg.height * seg.width <= MAX_PX and seg.tokens == largest[0] * largest[1]


def test_lowest_weights_are_dropped_when_floors_do_not_fit():
    floor = math.prod(frame_grids((720, 1280), MIN_PX, MAX_PX)[0])
    segments = [image(float(t), weight=w) for t, w in enumerate([0.1, 0.5, 0.05, 0.3])]
    plan = allocate(segments, 2 * floor + 1, (720, 1280), MIN_PX, MAX_PX, 2.0)
    assert [s.start for s in plan.segments] == [1.0, 3.0]


def test_budget_below_one_minimal_image_is_a_budget_error():
    with pytest.raises(BudgetError, match="cannot hold one image"):
        allocate([image(0.0)], 100, (720, 1280), MIN_PX, MAX_PX, 2.0)
    with pytest.raises(BudgetError):
        allocate([image(0.0)], 0, (720, 1280), MIN_PX, MAX_PX, 2.0)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="no duration"):
        allocate([clip(3.0, 3.0)], 1000, (720, 1280), MIN_PX, MAX_PX, 2.0)
    with pytest.raises(ValueError):
        frame_grids((720, 1280), MAX_PX, MIN_PX)
    with pytest.raises(ValueError):
        frame_grids((0, 1280), MIN_PX, MAX_PX)


def test_split_budget_is_proportional_above_the_floors_and_sums_to_the_total():
    from vidsift.pipeline.plan.budget import split_budget

    assert split_budget([3, 1, 0], [10, 10, 10], 100) == [67, 23, 10]
    assert split_budget([0, 0], [5, 5], 11) == [6, 5]  # no weight: equal, remainder to the first
    # Floors that do not all fit: the lightest part gets nothing, the rest share the total.
    assert split_budget([1, 2, 3], [40, 40, 40], 100) == [0, 40, 60]
    # A heavy part whose floor alone exceeds the total is left out, not the light one.
    assert split_budget([5, 1], [200, 1], 100) == [0, 100]
    assert split_budget([1], [101], 100) == [0]
    with pytest.raises(ValueError, match="2 weights but 1 floors"):
        split_budget([1, 1], [1], 10)


@pytest.mark.parametrize("frame_size", [(16, 16000), (16000, 16), (1, 4000), (2, 1000), (16, 3201)])
def test_a_video_too_elongated_for_the_processor_is_planned_letterboxed(frame_size):
    """Frames more elongated than the processor's 200:1 (16000 x 16 and the like) are planned as
    their letterboxed frames (core.vision.padded_size): exact token counts, sizes the processor
    keeps as they are, within the budget."""
    plan = allocate([image(1.0), clip(2.0, 6.0, weight=2.0)], 1024, frame_size, MIN_PX, MAX_PX,
                    clip_fps=2.0)
    assert [s.kind for s in plan.segments] == [SegmentKind.IMAGE, SegmentKind.CLIP]
    assert plan.total_tokens <= 1024
    processor = hf_image_processor(MIN_PX, MAX_PX)
    for seg in plan.segments:
        assert seg.tokens == tokens_for(len(seg.timestamps), seg.height, seg.width)
        assert smart_resize(seg.height, seg.width, FACTOR, MIN_PX, MAX_PX) == (seg.height, seg.width)
        assert hf_image_tokens(processor, [np.zeros((seg.height, seg.width, 3), np.uint8)]) == [
            tokens_for(1, seg.height, seg.width)]

"""Budget policies (plan.budget.BUDGET_POLICIES, budget.policy): quota, slow_fast, adaptive;
every plan's count exact by the model's arithmetic and within the budget."""

import numpy as np
import pytest

from vidsift.core.config import BudgetConfig, SelectionConfig
from vidsift.core.errors import ConfigError
from vidsift.core.types import Segment, SegmentKind
from vidsift.core.vision import VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS, tokens_for
from vidsift.pipeline.plan.budget import (
    adaptive_slots, allocate, frame_grids, get_budget_policy, slow_fast_allocate,
)
from vidsift.pipeline.plan.evidence import plan_evidence, slot_count


def _exact(plan, budget):
    for seg in plan.segments:
        assert seg.tokens == tokens_for(len(seg.timestamps), seg.height, seg.width)
    assert 0 < plan.total_tokens <= budget


def test_adaptive_slots_fewer_for_a_peaked_relevance_deterministic():
    flat = np.full(100, 0.3) + 1e-3 * np.sin(np.arange(100))
    peaked = np.full(100, 0.1)
    peaked[40:42] = 0.6
    assert adaptive_slots(flat, 16) == 16
    assert adaptive_slots(peaked, 16) == 4  # sqrt(PR) ~ 0.14: the floor, a quarter of 16
    assert adaptive_slots(peaked, 16) == adaptive_slots(peaked.copy(), 16)
    broad = np.full(100, 0.1)
    broad[::4] = 0.6  # a quarter of the frames stand out
    assert adaptive_slots(peaked, 16) < adaptive_slots(broad, 16) < 16
    assert adaptive_slots(np.zeros(5), 7) == adaptive_slots([0.2], 7) == 7


def test_slow_fast_spends_a_clips_tokens_on_more_steps_with_a_few_large_frames():
    segments = [Segment(10.0, 30.0, SegmentKind.CLIP, weight=1.0), Segment(50.0, 50.0, SegmentKind.IMAGE)]
    args = (segments, 3000, (720, 1280), 16 * 28 * 28, VIDEO_MAX_PIXELS, 2.0)  # 16-token floor
    quota = allocate(*args)
    plan = slow_fast_allocate(*args, slow_steps=2)
    _exact(plan, 3000)
    assert plan.total_tokens <= quota.total_tokens
    assert [s.start for s in plan.segments] == sorted(s.start for s in plan.segments)
    slow = [s for s in plan.segments if s.source.endswith("+slow")]
    fast = [s for s in plan.segments if s.source.endswith("+fast")]
    assert len(slow) == 2 and len(fast) == 1 and all(s.kind is SegmentKind.IMAGE for s in slow)
    quota_clip = next(s for s in quota.segments if s.kind is SegmentKind.CLIP)
    # the slow frames are larger than the quota clip's, the fast ones at most a quarter of them
    assert slow[0].height * slow[0].width > quota_clip.height * quota_clip.width
    assert fast[0].tokens // (len(fast[0].timestamps) // 2) * 4 <= slow[0].tokens
    # every temporal step the quota clip had (40 frames at 2 fps over 20 s) is still seen
    assert len(fast[0].timestamps) // 2 + len(slow) == len(quota_clip.timestamps) // 2 == 20
    assert plan.segments[-1] == quota.segments[-1]  # the image as quota planned it
    assert list(fast[0].timestamps) == sorted(fast[0].timestamps)


@pytest.fixture
def coarse():
    """200 coarse frames every 3 s of a 600 s video; the question matches frames 100-101."""
    rng = np.random.default_rng(3)
    times = np.arange(200) * 3.0
    visual = rng.normal(size=(200, 32))
    visual /= np.linalg.norm(visual, axis=1, keepdims=True)
    text = rng.normal(size=(200, 64))
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    return times, visual, text, text[100] + text[101]


@pytest.mark.parametrize("policy", ["quota", "slow_fast", "adaptive"])
def test_each_policy_plans_through_plan_evidence_by_config(coarse, policy):
    times, visual, text, query = coarse
    # a 16-token floor: a fast step may cost a quarter of a slow one
    budget = BudgetConfig(tokens=4096, policy=policy, slow_steps=1, min_pixels=16 * 28 * 28)
    plan = plan_evidence(times, visual, text, query / np.linalg.norm(query), 0.0, 600.0,
                         SelectionConfig(), budget, (720, 1280))
    _exact(plan, 4096)
    quota = plan_evidence(times, visual, text, query / np.linalg.norm(query), 0.0, 600.0,
                          SelectionConfig(), BudgetConfig(tokens=4096, min_pixels=16 * 28 * 28),
                          (720, 1280))
    if policy == "quota":
        assert plan.segments == quota.segments
    elif policy == "slow_fast":
        assert any(s.source.endswith("+slow") for s in plan.segments)
    else:  # one moment matches: fewer, larger segments than quota's slots
        assert len(plan.segments) < len(quota.segments) <= slot_count(budget, (720, 1280))


def test_unknown_policy_is_a_config_error():
    with pytest.raises(ConfigError, match="budget policy"):
        get_budget_policy("magic")
    assert frame_grids((720, 1280), VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS)

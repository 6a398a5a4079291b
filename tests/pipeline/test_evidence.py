import numpy as np
import pytest

from vidsift.core.config import BudgetConfig, SelectionConfig
from vidsift.core.errors import BudgetError
from vidsift.core.vision import tokens_for
from vidsift.pipeline.evidence import frame_relevance, plan_evidence, slot_count
from vidsift.core.types import SegmentKind


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def coarse():
    """300 coarse frames every 2 s of a 600 s video, shuffled; the question matches 300-302 s."""
    rng = np.random.default_rng(3)
    times = np.arange(300) * 2.0
    visual = unit(rng.normal(size=(20, 48))[np.arange(300) // 15] + 0.05 * rng.normal(size=(300, 48)))
    text = unit(rng.normal(size=(300, 256)))
    query = unit(text[150] + text[151])
    order = rng.permutation(300)
    return times[order], visual[order], text[order], query


@pytest.mark.parametrize("selector", ["uniform", "query", "keyclips", "coverage", "balanced"])
def test_plan_is_time_ordered_exact_and_inside_the_budget(coarse, selector):
    times, visual, text, query = coarse
    budget = BudgetConfig(tokens=4096)
    plan = plan_evidence(times, visual, text, query, 0.0, 600.0, SelectionConfig(selector=selector),
                         budget, (720, 1280), video="v.mp4")
    assert plan.video == "v.mp4" and plan.budget == 4096
    assert 4096 - 200 < plan.total_tokens <= 4096
    starts = [s.start for s in plan.segments]
    assert starts == sorted(starts)
    for seg in plan.segments:
        assert seg.tokens == tokens_for(len(seg.timestamps), seg.height, seg.width)
        assert all(seg.start <= t <= seg.end for t in seg.timestamps)
        if seg.kind is SegmentKind.IMAGE:
            assert len(seg.timestamps) == 1
            if selector != "uniform":
                assert seg.timestamps[0] in set(times.tolist())  # a real coarse frame's PTS


def test_balanced_plan_shows_the_relevant_moment_with_most_tokens(coarse):
    times, visual, text, query = coarse
    plan = plan_evidence(times, visual, text, query, 0.0, 600.0, SelectionConfig(), BudgetConfig(), (720, 1280))
    richest = max(plan.segments, key=lambda s: s.tokens)
    assert richest.start <= 301.0 <= richest.end


def test_relevance_and_slots():
    text = np.eye(3)
    assert frame_relevance(text, np.array([0.0, 1.0, 0.0])).tolist() == [0, 1, 0]
    assert frame_relevance(text, np.array([[1.0, 0, 0], [0, 0, 1.0]])).tolist() == [1, 0, 1]
    assert frame_relevance(text, None).tolist() == [0, 0, 0]
    assert slot_count(BudgetConfig(tokens=4096), (720, 1280)) == 16
    # 240p frames cost at most 140 tokens: more, smaller slots rather than upscaling
    assert slot_count(BudgetConfig(tokens=4096), (240, 320)) == 4096 // 140


def test_no_coarse_frames_falls_back_to_uniform():
    empty = np.zeros((0, 4))
    plan = plan_evidence(np.zeros(0), empty, empty, None, 0.0, 60.0, SelectionConfig(), BudgetConfig(tokens=1024), (720, 1280))
    assert [s.source for s in plan.segments] == ["uniform"] * 4


def test_errors():
    t = np.arange(3.0)
    v = unit(np.ones((3, 4)))
    with pytest.raises(BudgetError):
        plan_evidence(t, v, v, v[0], 0, 3, SelectionConfig(), BudgetConfig(tokens=10), (720, 1280))
    with pytest.raises(ValueError):
        plan_evidence(t, v[:2], v, v[0], 0, 3, SelectionConfig(), BudgetConfig(), (720, 1280))
    with pytest.raises(ValueError):
        plan_evidence(t, v, v, v[0], 5, 3, SelectionConfig(), BudgetConfig(), (720, 1280))

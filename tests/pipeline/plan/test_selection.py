import numpy as np
import pytest

from vidsift.core.config import SelectionConfig
from vidsift.pipeline.plan.selection import (
    SELECTORS,
    clip_around,
    coverage_order,
    find_anchors,
    get_selector,
    relevance_weights,
)
from vidsift.core.types import SegmentKind


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def video():
    """100 coarse frames every 2 s over [0, 200]: 5 scenes of 20 frames; frames 60..62 (120-124 s)
    are relevant to the question; frame 90 is a visual outlier inside the last scene."""
    rng = np.random.default_rng(1)
    times = np.arange(100) * 2.0
    scenes = rng.normal(size=(5, 32))
    visual = scenes[np.arange(100) // 20] + 0.02 * rng.normal(size=(100, 32))
    visual[90] = rng.normal(size=32)
    relevance = np.full(100, 0.05) + 0.01 * rng.random(100)
    relevance[60:63] = [0.5, 0.6, 0.45]
    return times, unit(visual).astype(np.float32), relevance


def test_weights():
    s = np.array([0.1, 0.2, -0.3])
    np.testing.assert_allclose(relevance_weights(s, "quota"), [0.2, 0.8, 0.0])
    soft = relevance_weights(s, "softmax", temperature=0.1)
    assert soft.sum() == pytest.approx(1.0) and soft[1] > soft[0] > soft[2] > 0
    assert relevance_weights(np.zeros(4)).tolist() == [0.25] * 4
    with pytest.raises(ValueError):
        relevance_weights(s, "bogus")


def test_anchors_are_peaks_suppressed_in_time():
    times = np.arange(10.0)
    rel = np.array([0, 9, 8, 0, 0, 0, 7, 0, 0, 1], float)
    assert find_anchors(times, rel, 5, min_gap_s=3).tolist() == [1, 6, 9]
    assert find_anchors(times, rel, 2, min_gap_s=0).tolist() == [1, 2]


def test_clip_around_stays_inside_the_video():
    assert clip_around(1.0, 4.0, 0.0, 100.0) == (0.0, 4.0)
    assert clip_around(99.0, 4.0, 0.0, 100.0) == (96.0, 100.0)
    assert clip_around(50.0, 4.0, 0.0, 100.0) == (48.0, 52.0)
    assert clip_around(1.0, 4.0, 0.5, 2.5) == (0.5, 2.5)


def test_coverage_picks_every_scene_then_the_outlier(video):
    times, visual, _ = video
    picks = coverage_order(visual, 6)
    assert sorted(set(int(p) // 20 for p in picks[:5])) == [0, 1, 2, 3, 4]
    assert 90 in picks.tolist()


def test_coverage_on_a_long_video_finds_every_scene_and_respects_covered_frames():
    # 8 scenes of 1000 frames each (a 2-hour memory's size): candidates and clients are
    # subsampled past MAX_COVERAGE_CLIENTS, yet every scene still gets a pick, and frames
    # already covered or not candidates are never returned.
    from vidsift.pipeline.plan.selection import MAX_COVERAGE_CLIENTS

    rng = np.random.default_rng(3)
    scenes = rng.standard_normal((8, 64)).astype(np.float32)
    visual = np.repeat(scenes, 1000, axis=0) + 0.05 * rng.standard_normal((8000, 64)).astype(np.float32)
    visual /= np.linalg.norm(visual, axis=1, keepdims=True)
    assert len(visual) > 2 * MAX_COVERAGE_CLIENTS
    covered = np.arange(3000, 3010)  # scene 3 is covered already
    candidates = np.ones(8000, bool)
    candidates[7000:] = False  # scene 7 may not be picked
    picks = coverage_order(visual, 6, covered=covered, candidates=candidates)
    assert len(set(picks.tolist())) == 6
    assert not set(picks.tolist()) & set(covered.tolist())
    assert all(candidates[picks])
    assert sorted(int(p) // 1000 for p in picks) == [0, 1, 2, 4, 5, 6]


def test_query_selector_puts_the_relevant_region_first(video):
    times, visual, relevance = video
    segs = get_selector("query")(times, visual, relevance, 0.0, 200.0, SelectionConfig(), 3)
    assert [s.start for s in segs] == [120.0, 122.0, 124.0]
    best = max(segs, key=lambda s: s.weight)
    assert best.start == 122.0 and sum(s.weight for s in segs) == pytest.approx(1.0)


def test_keyclips_lie_inside_the_video_and_cover_the_peak(video):
    times, visual, relevance = video
    config = SelectionConfig(clip_seconds=4.0, min_anchor_gap_s=6.0, max_anchors=4)
    segs = get_selector("keyclips")(times, visual, relevance, 0.0, 200.0, config, 8)
    assert len(segs) == 4
    assert all(s.kind is SegmentKind.CLIP and 0.0 <= s.start < s.end <= 200.0 for s in segs)
    assert all(s.duration == pytest.approx(4.0) for s in segs)
    top = max(segs, key=lambda s: s.weight)
    assert top.start <= 122.0 <= top.end
    starts = [s.start for s in segs]
    assert starts == sorted(starts)


def test_overlapping_keyclips_are_joined(video):
    times, visual, relevance = video
    config = SelectionConfig(clip_seconds=8.0, min_anchor_gap_s=2.0, max_anchors=2)
    segs = get_selector("keyclips")(times, visual, relevance, 0.0, 200.0, config, 2)
    assert len(segs) == 1 and segs[0].start == 116.0 and segs[0].end == 126.0  # [118, 126] and [116, 124]


def test_balanced_respects_the_shares_and_merges_duplicates(video):
    times, visual, relevance = video
    config = SelectionConfig(coverage_share=0.4, max_anchors=3, min_anchor_gap_s=6.0)
    segs = get_selector("balanced")(times, visual, relevance, 0.0, 200.0, config, 10)
    anchors = [s for s in segs if s.source == "anchor"]
    cover = [s for s in segs if s.source == "coverage"]
    assert len(anchors) == 3 and 1 <= len(cover) <= 4
    assert sum(s.weight for s in anchors) == pytest.approx(0.6)
    assert sum(s.weight for s in cover) == pytest.approx(0.4)
    assert any(s.start <= 122.0 <= s.end for s in anchors)
    # a scene is one look: no two coverage images from the same scene survive the merge
    scenes = [int(s.start // 40) for s in cover if int(s.start / 2) != 90]
    assert len(scenes) == len(set(scenes))
    assert [s.start for s in segs] == sorted(s.start for s in segs)


def test_merge_threshold_keeps_duplicates_apart_when_disabled(video):
    times, visual, relevance = video
    same = np.repeat(visual[:1], 100, axis=0)
    on = get_selector("balanced")(times, same, relevance, 0, 200, SelectionConfig(), 10)
    off = get_selector("balanced")(times, same, relevance, 0, 200, SelectionConfig(merge_threshold=1.0), 10)
    assert len([s for s in off if s.source == "coverage"]) > len([s for s in on if s.source == "coverage"])


def test_uniform_selector_is_evenly_spaced(video):
    times, visual, relevance = video
    segs = get_selector("uniform")(times, visual, relevance, 0.0, 200.0, SelectionConfig(), 4)
    assert [s.start for s in segs] == [25.0, 75.0, 125.0, 175.0]
    assert all(s.weight == 0.25 and s.kind is SegmentKind.IMAGE for s in segs)


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_every_selector_returns_time_ordered_segments_inside_the_video(name, video):
    times, visual, relevance = video
    segs = get_selector(name)(times, visual, relevance, 0.0, 200.0, SelectionConfig(), 6)
    assert segs and all(0.0 <= s.start <= s.end <= 200.0 for s in segs)
    assert [s.start for s in segs] == sorted(s.start for s in segs)
    assert sum(s.weight for s in segs) == pytest.approx(1.0)


def test_bad_selector_inputs():
    with pytest.raises(ValueError, match="unknown selector"):
        get_selector("magic")
    with pytest.raises(ValueError, match="shapes"):
        get_selector("query")(np.arange(3.0), np.zeros((2, 4)), np.zeros(3), 0, 3, SelectionConfig(), 1)

import numpy as np
import pytest

from vidsift.core.config import BudgetConfig, SelectionConfig
from vidsift.core.errors import BudgetError
from vidsift.core.vision import tokens_for
from vidsift.pipeline.plan.evidence import frame_relevance, plan_evidence, slot_count
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


@pytest.mark.parametrize("selector", ["uniform", "query", "keyclips", "coverage", "balanced",
                                      "uniform_video"])
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


def test_uniform_video_is_one_clip_of_evenly_spread_frames_at_min_pixels(coarse):
    from vidsift.pipeline.plan.budget import frame_grids

    times, visual, text, query = coarse
    budget = BudgetConfig(tokens=4096)
    plan = plan_evidence(times, visual, text, query, 0.0, 600.0,
                         SelectionConfig(selector="uniform_video"), budget, (720, 1280))
    [clip] = plan.segments
    rows, cols = frame_grids((720, 1280), budget.min_pixels, budget.max_pixels)[0]
    assert clip.kind is SegmentKind.CLIP and (clip.start, clip.end) == (0.0, 600.0)
    # as many temporal patches as the budget pays at min_pixels, two frames each, evenly spread
    assert len(clip.timestamps) == 2 * (4096 // (rows * cols))
    assert (clip.height, clip.width) == (rows * 28, cols * 28)
    assert np.allclose(np.diff(clip.timestamps), 600.0 / len(clip.timestamps))


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


def _video_evidence(name, seconds, frame_size, weight, rng, query=None, match_at=None):
    from vidsift.pipeline.plan.evidence import VideoEvidence

    times = np.arange(0.0, seconds, 1.0)
    text = unit(rng.normal(size=(len(times), 64)))
    if match_at is not None:
        text[int(match_at)] = query
    return VideoEvidence(video=name, times=times, visual=unit(rng.normal(size=(len(times), 16))),
                         text_vectors=text, start=0.0, end=seconds, frame_size=frame_size,
                         weight=weight)


@pytest.mark.parametrize("tokens", [700, 2048, 4096])
def test_one_plan_over_several_videos_is_exact_within_the_one_budget(tokens):
    from vidsift.pipeline.plan.budget import frame_grids
    from vidsift.pipeline.plan.evidence import plan_across_videos

    rng = np.random.default_rng(5)
    query = unit(rng.normal(size=64))
    sources = [
        _video_evidence("/v/a.mp4", 60, (240, 320), 0.4, rng),
        _video_evidence("/v/b.mp4", 90, (720, 1280), 1.5, rng, query, match_at=42),
        _video_evidence("/v/c.mp4", 30, (1080, 1080), 0.2, rng),
    ]
    budget = BudgetConfig(tokens=tokens)
    plan = plan_across_videos(sources, query, SelectionConfig(), budget)
    assert plan.video == "" and plan.budget == tokens
    assert plan.total_tokens == sum(s.tokens for s in plan.segments) <= tokens
    assert plan.total_tokens >= 0.98 * tokens  # what the shares leave is offered to a re-plan
    sizes = {s.video: s.frame_size for s in sources}
    per_video = {}
    for seg in plan.segments:
        # Each segment costs what the model counts, at a size made for its own video's frames.
        assert seg.tokens == tokens_for(len(seg.timestamps), seg.height, seg.width)
        grids = frame_grids(sizes[seg.video], budget.min_pixels, budget.max_pixels)
        assert (seg.height // 28, seg.width // 28) in grids
        per_video[seg.video] = per_video.get(seg.video, 0) + seg.tokens
    # Grouped by video, the heaviest first; the video holding the answer gets the most tokens
    # and shows the matching moment.
    order = list(dict.fromkeys(s.video for s in plan.segments))
    assert order[0] == "/v/b.mp4" and order == sorted(order, key=lambda v: -{
        "/v/a.mp4": 0.4, "/v/b.mp4": 1.5, "/v/c.mp4": 0.2}[v])
    assert max(per_video, key=per_video.get) == "/v/b.mp4"
    assert any(s.start <= 42.0 <= s.end for s in plan.segments if s.video == "/v/b.mp4")


def test_a_video_too_elongated_for_the_processor_is_planned_beside_the_others():
    """A 16000 x 16 video (aspect 1000; Qwen-VL takes 200) among two ordinary ones: planned
    letterboxed, each segment exact, the answer still found in the ordinary video holding it."""
    from vidsift.pipeline.plan.evidence import plan_across_videos

    rng = np.random.default_rng(8)
    query = unit(rng.normal(size=64))
    sources = [
        _video_evidence("/v/wide.mp4", 4, (16, 16000), 1.0, rng),
        _video_evidence("/v/a.mp4", 30, (240, 320), 1.0, rng, query, match_at=12),
        _video_evidence("/v/b.mp4", 30, (720, 1280), 0.5, rng),
    ]
    plan = plan_across_videos(sources, query, SelectionConfig(), BudgetConfig(tokens=2048))
    assert set(s.video for s in plan.segments) == {"/v/wide.mp4", "/v/a.mp4", "/v/b.mp4"}
    assert plan.total_tokens <= 2048
    for seg in plan.segments:
        assert seg.tokens == tokens_for(len(seg.timestamps), seg.height, seg.width)
        assert max(seg.height, seg.width) / min(seg.height, seg.width) <= 200
    wide = [s for s in plan.segments if s.video == "/v/wide.mp4"]
    assert all(s.height == 28 for s in wide)  # one token row: 16 high, padded to 80
    assert any(s.start <= 12.0 <= s.end for s in plan.segments if s.video == "/v/a.mp4")


def test_a_budget_for_no_video_is_a_budget_error():
    from vidsift.pipeline.plan.evidence import plan_across_videos

    rng = np.random.default_rng(1)
    sources = [_video_evidence("/v/a.mp4", 10, (720, 1280), 1.0, rng)]
    with pytest.raises(BudgetError, match="cannot hold one image of any of the 1 videos"):
        plan_across_videos(sources, None, SelectionConfig(), BudgetConfig(tokens=100))


def test_speech_relevance_raises_the_frames_a_matching_line_reaches():
    from vidsift.pipeline.plan.evidence import speech_relevance

    times = np.array([8.0, 0.0, 2.0, 4.0, 6.0, 10.0])  # any order
    own = np.array([0.1, 0.3, 0.2, 0.05, 0.4, 0.0])
    spans = np.array([[3.6, 4.4], [8.9, 9.1], [20.0, 21.0]])
    similarity = np.array([0.9, 0.35, 0.99])
    raised = speech_relevance(times, own, spans, similarity, reach_s=1.0)
    # 3.6-4.4 reaches 4.0 only (2.0 + 1 < 3.6, 6.0 - 1 > 4.4); 8.9-9.1 is between frames 8 and 10
    # and reaches both; the line at 20 s reaches no frame; a frame keeps the higher score
    assert raised.tolist() == [0.35, 0.3, 0.2, 0.9, 0.4, 0.35]
    assert own.tolist() == [0.1, 0.3, 0.2, 0.05, 0.4, 0.0]  # not modified in place
    assert speech_relevance(times, own, np.zeros((0, 2)), np.zeros(0), 1.0).tolist() == own.tolist()
    with pytest.raises(ValueError, match="2 spans but 1 similarities"):
        speech_relevance(times, own, spans[:2], similarity[:1], 1.0)


def test_plan_with_speech_picks_the_moment_only_said(coarse):
    from vidsift.pipeline.plan.evidence import SpeechEvidence

    times, visual, text, _ = coarse
    rng = np.random.default_rng(5)
    said = unit(rng.normal(size=256))
    query = unit(said + 0.2 * rng.normal(size=256))  # matches the speech, no frame
    spans = np.array([[100.0, 110.0], [471.0, 473.5]])
    vectors = unit(np.stack([rng.normal(size=256), said]))
    budget, selection = BudgetConfig(tokens=1024), SelectionConfig(selector="query")

    def picked(speech):
        plan = plan_evidence(times, visual, text, query, 0.0, 600.0, selection, budget,
                             (720, 1280), speech=speech)
        return [t for s in plan.segments for t in s.timestamps]

    assert not any(470.0 <= t <= 474.5 for t in picked(None))
    assert any(470.0 <= t <= 474.5 for t in picked(SpeechEvidence(spans, vectors, reach_s=1.0)))
    # no transcript segments: the same plan as without speech
    empty = SpeechEvidence(np.zeros((0, 2)), np.zeros((0, 256)), 1.0)
    assert picked(empty) == picked(None)


def test_a_plan_across_videos_picks_the_moment_only_said_in_one_of_them():
    from vidsift.pipeline.plan.evidence import SpeechEvidence, plan_across_videos

    rng = np.random.default_rng(7)
    said = unit(rng.normal(size=64))
    query = unit(said + 0.2 * rng.normal(size=64))  # matches the line, no frame
    sources = [_video_evidence("/v/a.mp4", 60, (720, 1280), 1.0, rng),
               _video_evidence("/v/b.mp4", 60, (720, 1280), 1.0, rng)]
    budget, selection = BudgetConfig(tokens=2048), SelectionConfig(selector="query")

    def said_moment(plan):
        return [t for s in plan.segments if s.video == "/v/b.mp4" for t in s.timestamps
                if 36.0 <= t <= 41.0]

    assert not said_moment(plan_across_videos(sources, query, selection, budget))
    sources[1].speech = SpeechEvidence(np.array([[5.0, 8.0], [37.0, 40.0]]),
                                       unit(np.stack([rng.normal(size=64), said])), reach_s=1.0)
    plan = plan_across_videos(sources, query, selection, budget)
    assert said_moment(plan) and plan.total_tokens <= 2048

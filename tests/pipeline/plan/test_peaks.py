"""Several moments: relevance peaks of similar height each get an anchor (selection.find_peaks,
plan_evidence), on synthetic relevance curves; on-screen text scored on its own (text_relevance)."""

import numpy as np
import pytest

from vidsift.core.config import BudgetConfig, SelectionConfig
from vidsift.pipeline.plan.evidence import TextEvidence, plan_evidence, text_relevance
from vidsift.pipeline.plan.selection import find_peaks, several_moments

BEFORE = {"max_peaks": 0, "counting_peaks": 0}  # the plan before peaks: anchors by relevance


def curve(n=600, base=0.1, bumps=()):
    """(n,) relevance at 1 fps: `base` everywhere, each (start_s, end_s, height) a plateau."""
    relevance = np.full(n, base)
    for lo, hi, height in bumps:
        relevance[lo:hi + 1] = height
    return relevance


def frames_scoring(relevance, seed=0):
    """Coarse frames (times, visual, text vectors) and a query whose frame_relevance is exactly
    `relevance`: text[i] = r_i e0 + sqrt(1 - r_i^2) u_i with u_i orthogonal to the query e0."""
    rng = np.random.default_rng(seed)
    n = len(relevance)
    rest = rng.normal(size=(n, 63))
    rest /= np.linalg.norm(rest, axis=1, keepdims=True)
    text = np.hstack([relevance[:, None], np.sqrt(1 - relevance[:, None] ** 2) * rest])
    query = np.zeros(64)
    query[0] = 1.0
    visual = rng.normal(size=(n, 32))
    visual /= np.linalg.norm(visual, axis=1, keepdims=True)
    return np.arange(n, dtype=np.float64), visual.astype(np.float32), text.astype(np.float32), query


def covers(plan, t):
    return any(s.start <= t <= s.end for s in plan.segments)


def test_peaks_are_the_separated_stretches_of_similar_height_in_time_order():
    relevance = curve(bumps=[(100, 104, 0.50), (250, 252, 0.48), (400, 405, 0.52), (500, 502, 0.2)])
    peaks = find_peaks(np.arange(600.0), relevance, max_peaks=8, ratio=0.6, min_gap_s=6.0)
    assert [(p.start, p.end, p.time) for p in peaks] == [
        (100, 104, 100), (250, 252, 250), (400, 405, 400)]  # the 0.2 bump is not of their height
    assert [p.score for p in peaks] == pytest.approx([0.50, 0.48, 0.52])
    assert not any(p.covered for p in peaks)
    # the best kept when fewer are asked for, still in time order
    assert [p.time for p in find_peaks(np.arange(600.0), relevance, 2, 0.6, 6.0)] == [100, 400]


def test_stretches_closer_than_the_gap_are_one_moment_and_flat_curves_have_none():
    relevance = curve(bumps=[(100, 104, 0.5), (108, 110, 0.55)])  # a 3 s dip inside one moment
    peaks = find_peaks(np.arange(600.0), relevance, 8, 0.6, 6.0)
    assert [(p.start, p.end, p.time) for p in peaks] == [(100, 110, 108)]
    assert find_peaks(np.arange(600.0), curve(bumps=[(5, 6, 0.12)]), 8, 0.6, 6.0) == []
    assert find_peaks(np.arange(600.0), relevance, 0, 0.6, 6.0) == []


@pytest.mark.parametrize("question", [
    "How many times does the word STOP appear?", "How often is the door opened?",
    "What comes first, the cat or the dog?", "Does the sign change from red to green?",
    "What happens after the goal?", "In which order do the speakers talk?"])
def test_counting_and_ordering_questions_are_about_several_moments(question):
    assert several_moments(question)


def test_a_question_about_one_thing_is_not():
    assert not several_moments("What is the password shown on screen?")
    assert not several_moments("")


@pytest.mark.parametrize("selector", ["balanced", "keyclips"])
def test_every_moment_gets_an_anchor_before_a_long_one_gets_a_second(selector):
    """A 60 s stretch of the best relevance and three 2 s moments almost as relevant: by
    relevance alone all 8 anchors went into the long stretch (6 s apart) and coverage found the
    short ones by chance at best; now each moment is covered, and the plan says so."""
    relevance = curve(bumps=[(60, 120, 0.60), (200, 201, 0.55), (330, 331, 0.56),
                             (470, 471, 0.54)])
    times, visual, text, query = frames_scoring(relevance)
    selection = SelectionConfig(selector=selector, coverage_share=0.0)
    budget = BudgetConfig(tokens=16 * 256)
    before = plan_evidence(times, visual, text, query, 0.0, 600.0,
                           selection.model_copy(update=BEFORE), budget, (720, 1280))
    assert not any(covers(before, t) for t in (200, 330, 470))
    assert before.peaks == []

    plan = plan_evidence(times, visual, text, query, 0.0, 600.0, selection, budget, (720, 1280))
    assert all(covers(plan, t) for t in (60, 200, 330, 470))
    assert [(p.start, p.end, p.covered) for p in plan.peaks] == [
        (60, 120, True), (200, 201, True), (330, 331, True), (470, 471, True)]
    assert plan.total_tokens <= budget.tokens
    assert plan.total_tokens == pytest.approx(before.total_tokens, abs=256)


def test_a_counting_question_considers_more_peaks_within_the_same_budget():
    moments = [(40 + 90 * k, 41 + 90 * k, 0.5 + 0.01 * k) for k in range(6)]
    times, visual, text, query = frames_scoring(curve(bumps=moments))
    selection, budget = SelectionConfig(max_peaks=4, counting_peaks=8), BudgetConfig(tokens=4096)

    def plan(question):
        return plan_evidence(times, visual, text, query, 0.0, 600.0, selection, budget,
                             (720, 1280), question=question)

    plain = plan("Where is the red sign?")
    counting = plan("How many times does the red sign appear?")
    assert len(plain.peaks) == 4 and len(counting.peaks) == 6
    assert all(p.covered for p in counting.peaks)
    assert all(covers(counting, lo) for lo, _, _ in moments)
    assert counting.total_tokens <= 4096 and plain.total_tokens <= 4096


def test_more_peaks_than_slots_take_every_slot_coverage_included():
    moments = [(20 + 30 * k, 20 + 30 * k, 0.5) for k in range(12)]
    times, visual, text, query = frames_scoring(curve(n=400, bumps=moments))
    budget = BudgetConfig(tokens=10 * 256)  # 10 slots, 3 of them coverage by default
    plan = plan_evidence(times, visual, text, query, 0.0, 400.0,
                         SelectionConfig(counting_peaks=16), budget, (720, 1280),
                         question="how many times?")
    assert len(plan.peaks) == 10 and all(p.covered for p in plan.peaks)
    assert plan.total_tokens <= budget.tokens


def test_on_screen_text_scores_the_frame_when_it_matches_better_than_the_fused_vector():
    relevance = np.array([0.2, 0.3, 0.25, 0.1])
    texts = TextEvidence(frame_text=np.array([-1, 0, 1, 0]),
                         vectors=np.array([[0.6, 0.8], [0.0, 1.0]]))
    raised = text_relevance(relevance, texts, np.array([1.0, 0.0]))
    assert raised.tolist() == pytest.approx([0.2, 0.6, 0.25, 0.6])


def test_a_paraphrased_text_moment_is_planned_once_its_text_is_scored_alone():
    """The fused vector of the frames showing "SECRET WORD" is no closer to the question than
    the footage around it; the text alone is (0.7): the plan now shows that moment."""
    relevance = curve(base=0.3, bumps=[(150, 153, 0.28)])
    times, visual, text, query = frames_scoring(relevance)
    frame_text = np.full(600, -1)
    frame_text[150:154] = 0
    texts = TextEvidence(frame_text, np.array([[0.7] + [np.sqrt(1 - 0.49)] + [0.0] * 62]))
    budget = BudgetConfig(tokens=4 * 256)
    fused_only = plan_evidence(times, visual, text, query, 0.0, 600.0,
                               SelectionConfig(sentence_match=False), budget, (720, 1280),
                               texts=texts)
    assert not covers(fused_only, 151)
    plan = plan_evidence(times, visual, text, query, 0.0, 600.0, SelectionConfig(), budget,
                         (720, 1280), texts=texts)
    assert covers(plan, 151)
    assert [(p.start, p.end, p.covered) for p in plan.peaks] == [(150, 153, True)]


def test_moments_that_fill_most_of_a_short_video_are_still_peaks():
    """A sign on screen for 28 of 48 s: against the median (the sign's own level) nothing
    stood out and no peak was found; the footage's level is the lower quartile."""
    relevance = curve(n=48, bumps=[(0, 19, 0.6), (28, 31, 0.6), (40, 43, 0.6)])
    peaks = find_peaks(np.arange(48.0), relevance, 8, 0.6, 6.0)
    assert [(p.start, p.end) for p in peaks] == [(0, 19), (28, 31), (40, 43)]

"""Score kinds on one scale (plan.matching): a text that stands out among the video's texts
counts as standing out among its frames, though its raw cosine is under the frames' level;
and the rewrite's phrases as the model's answer is read (plan.rewrite)."""

import numpy as np
import pytest

from vidsift.core.config import BudgetConfig, SelectionConfig
from vidsift.pipeline.plan.evidence import TextEvidence, plan_evidence, text_relevance
from vidsift.pipeline.plan.matching import MIN_SPREAD, matched, on_scale_of
from vidsift.pipeline.plan.rewrite import MAX_PHRASES, parse_phrases, rewrite_prompt

from tests.pipeline.plan.test_peaks import covers, frames_scoring


def text_rows(similarities):
    """(T, 64) unit vectors whose cosine to the query e0 is each of similarities."""
    s = np.asarray(similarities, dtype=np.float64)[:, None]
    rest = np.zeros((len(s), 63))
    rest[:, 0] = 1.0
    return np.hstack([s, np.sqrt(1 - s ** 2) * rest]).astype(np.float32)


def test_a_kind_is_put_on_the_reference_scale_by_its_own_spread():
    reference = np.array([0.3, 0.4, 0.5, 0.4])  # mean 0.4, std ~0.0707
    assert on_scale_of(reference, reference) == pytest.approx(reference)  # itself: unchanged
    scores = np.array([0.0, 0.1, 0.2])  # mean 0.1, std ~0.0816
    assert on_scale_of(scores, reference) == pytest.approx(
        0.4 + reference.std() * (scores - 0.1) / scores.std())
    alike = np.array([0.2, 0.21])  # spread under MIN_SPREAD: standardised by MIN_SPREAD
    assert on_scale_of(alike, reference)[1] == pytest.approx(
        0.4 + reference.std() * 0.005 / MIN_SPREAD)
    assert on_scale_of(np.zeros(0), reference).size == 0
    assert on_scale_of(scores, np.zeros(0)) == pytest.approx(scores)


def test_matched_never_lowers_a_raw_score():
    scores = np.array([0.9, 0.05, 0.06, 0.04])
    reference = np.full(10, 0.3)  # no spread: every rescaled score is the reference's mean
    assert matched(scores, reference).tolist() == pytest.approx([0.9, 0.3, 0.3, 0.3])


def paraphrase_memory():
    """600 frames at 1 fps whose fused vectors score ~0.35 (0.33-0.37); frames 150-153 show the
    sign that answers the question in other words (its text alone: 0.21, as MiniLM scores
    "What password is displayed?" against "SECRET WORD: ORCHID"); 29 other texts (0.0-0.06)
    elsewhere."""
    t = np.arange(600)
    relevance = 0.35 + 0.02 * np.sin(t / 7.0)
    relevance[150:154] = 0.30
    frame_text = np.full(600, -1)
    frame_text[150:154] = 0
    for k in range(1, 30):
        frame_text[200 + 12 * k: 204 + 12 * k] = k
    others = np.linspace(0.0, 0.06, 29)
    return relevance, TextEvidence(frame_text, text_rows([0.21, *others]))


def test_a_text_standing_out_among_the_texts_wins_over_the_frames_level():
    relevance, texts = paraphrase_memory()
    times, visual, vectors, query = frames_scoring(relevance)
    raw = text_relevance(relevance, texts, query)
    assert raw[151] == pytest.approx(0.30)  # raw: 0.21 stays under the fused 0.30
    raised = text_relevance(relevance, texts, query, reference=relevance)
    assert raised[151] > relevance.max()
    assert raised[260] < relevance.max()  # an ordinary text stays ordinary


def test_the_plan_shows_a_sign_asked_in_other_words_under_the_frames_level():
    """Before (the raw maximum of fused and text cosines) the plan of 4 frames never showed the
    sign: 0.21 is under every frame's 0.33-0.37."""
    relevance, texts = paraphrase_memory()
    times, visual, vectors, query = frames_scoring(relevance)
    budget = BudgetConfig(tokens=4 * 256)
    plan = plan_evidence(times, visual, vectors, query, 0.0, 600.0, SelectionConfig(), budget,
                         (720, 1280), texts=texts)
    assert covers(plan, 151)
    assert plan.total_tokens <= budget.tokens


def test_texts_that_all_score_alike_do_not_outrank_the_frames():
    relevance, _ = paraphrase_memory()
    frame_text = np.full(600, -1)
    frame_text[::20] = np.arange(30)
    texts = TextEvidence(frame_text, text_rows(np.full(30, 0.2)))
    times, visual, vectors, query = frames_scoring(relevance)
    raised = text_relevance(relevance, texts, query, reference=relevance)
    # each at most the frames' mean (z = 0): none rises over the frames that match best
    assert raised.max() == pytest.approx(relevance.max())
    assert np.all(raised <= np.maximum(relevance, relevance.mean()) + 1e-9)


def test_phrases_are_read_one_a_line_without_markers_quotes_or_the_question():
    answer = ('1. SECRET WORD\n2) "PASSWORD"\n - code\n\n* SECRET WORD\nQuestion: what?\n'
              "What password is displayed?\n\u2022 PIN\nLOGIN\nKEY\n")
    assert parse_phrases(answer, "What  password is displayed?") == [
        "SECRET WORD", "PASSWORD", "code", "PIN", "LOGIN"]
    assert len(parse_phrases("\n".join(f"w{i}" for i in range(9)))) == MAX_PHRASES
    assert parse_phrases("") == []
    assert "What password is displayed?" in rewrite_prompt("What   password is displayed?")

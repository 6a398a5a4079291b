"""Search scores a sign by its name as well as whole (plan.matching.text_parts): a question asks
for the value, so what it shares with "SPEAKER: DR. ANNA KOWALSKI" is SPEAKER."""

import pytest

from vidsift.core.config import Config
from vidsift.pipeline.flows.index import search_clips

from tests.pipeline.flows.test_search_sentences import embedder, index_labelled_clips  # noqa: F401

CLIPS = [
    (["microphone", "mike", "stage"], ""),
    (["lab coat", "library", "bookshop"], "SPEAKER: DR. ANNA KOWALSKI"),
    (["hare", "meadow"], ""),
    (["theater curtain", "stage"], "EXIT"),
    (["loudspeaker", "speaker unit"], ""),
]


def test_a_sign_is_found_by_its_name(tmp_path, embedder):  # noqa: F811
    """MiniLM scores "Who is speaking right now?" 0.22 against the whole sign (its clip's fused
    vector 0.335) and 0.48 against SPEAKER; before, a microphone's clip (0.356) came first."""
    cfg = Config.model_validate({"index": {"dir": str(tmp_path / "idx")}})
    index_labelled_clips(cfg, CLIPS, embedder)
    hits = search_clips("Who is speaking right now?", cfg, k=5, embedder=embedder)
    assert "SPEAKER" in hits[0].text
    assert hits[0].text_score == pytest.approx(0.48, abs=0.02)
    assert "microphone" in hits[1].text

"""A sign's name and value scored apart (plan.matching.text_parts, evidence.text_relevance)."""

import numpy as np
import pytest

from vidsift.pipeline.plan.evidence import TextEvidence, on_screen_texts, text_relevance
from vidsift.pipeline.plan.matching import text_parts

from tests.pipeline.plan.test_matching import text_rows


def test_a_text_is_split_at_the_colon_that_names_its_value():
    assert text_parts("SPEAKER: DR. ANNA KOWALSKI") == ["SPEAKER", "DR. ANNA KOWALSKI"]
    assert text_parts("DOORS OPEN 7:30 PM") == []  # a time is one part
    assert text_parts("GATE B:12") == ["GATE B", "12"]
    assert text_parts("EXIT") == [] and text_parts("NOTE:") == [] and text_parts(": :") == []
    assert text_parts("A:  B :A") == ["A", "B"]


def test_a_text_scores_its_best_part():
    frame_text = np.array([-1, 0, 1, 1, -1])
    texts = TextEvidence(frame_text, text_rows([0.22, 0.10]), part_text=np.array([0, 0]),
                         part_vectors=text_rows([0.48, 0.05]))
    query = np.eye(64)[0]
    raised = text_relevance(np.full(5, 0.3), texts, query)
    assert raised.tolist() == pytest.approx([0.3, 0.48, 0.3, 0.3, 0.3])


def test_on_screen_texts_embeds_each_string_once_with_its_parts():
    asked = []

    def embed(texts):
        asked.append(list(texts))
        return np.eye(8)[: len(texts)]

    descriptions = ["labels: a | text: SPEAKER: ANNA", "labels: b", "labels: a | text: EXIT",
                    "labels: c | text: SPEAKER: ANNA"]
    texts = on_screen_texts(descriptions, embed)
    assert asked == [["SPEAKER: ANNA", "EXIT", "SPEAKER", "ANNA"]]  # read as shown: once
    assert texts.frame_text.tolist() == texts.frame_read.tolist() == [0, -1, 1, 0]
    assert texts.part_text.tolist() == [0, 0]
    assert texts.part_vectors.shape == (2, 8) and texts.read_vectors.shape == (2, 8)
    assert on_screen_texts(["labels: a"], embed) is None

"""Reading summarize's map and reduce replies back, whatever shape the model answers in: a
chapter always gets a title, highlights are only moments inside the video."""

from __future__ import annotations

import pytest

from vidsift.pipeline.flows.summary_replies import (
    chapter_question,
    json_object,
    read_chapter,
    read_reduce,
    reduce_question,
)


@pytest.mark.parametrize("reply, expected", [
    ('{"title": "Boiling pasta", "summary": "Water boils."}',
     ("Boiling pasta", "Water boils.", "json")),
    ('Sure! ```json\n{"title": "Sauce", "summary": "Tomatoes\\nsimmer."}\n``` Enjoy.',
     ("Sauce", "Tomatoes simmer.", "json")),
    ('Here it is: {"title": "Plating", "summary": "Served."} and {"title": "x"}',
     ("Plating", "Served.", "json")),
    ("Title: The market\nSummary: People buy fish.\nThey haggle.",
     ("The market", "People buy fish. They haggle.", "text")),
    ("**Title**: The harbour", ("The harbour", "", "text")),
    ("A boat leaves the harbour\nIt sails north at dawn.",
     ("A boat leaves the harbour", "It sails north at dawn.", "text")),
    ("One line only", ("One line only", "One line only", "text")),
    ("   \n", ("", "", "empty")),
    ('{"title": "", "summary": ""}', ("", "", "empty")),
])
def test_a_chapter_reply_is_read_in_any_shape(reply, expected):
    assert read_chapter(reply) == expected


def test_a_long_title_is_cut_at_a_word():
    title, _, _ = read_chapter("word " * 40)
    assert len(title) <= 81 and title.endswith("…") and " wor…" not in title


def test_highlights_are_kept_inside_the_video_in_order_without_overlaps():
    reply = """{"summary": "A film.", "highlights": [
        {"start": 50, "end": 70, "title": "Chase", "why": "fast"},
        {"start": "0:10", "end": "0:20", "title": "Intro", "why": "sets up"},
        {"start": 55, "end": 60, "title": "Overlap", "why": "inside the chase"},
        {"start": 90, "end": 400, "title": "Long", "why": "runs past the end"},
        {"start": "soon", "end": 5, "title": "Bad", "why": "no time"},
        {"start": 30, "end": 20, "title": "Backwards", "why": "ends first"},
        {"start": 40, "end": 45}]}"""
    summary, highlights, read = read_reduce(reply, 0.0, 100.0, limit=4, max_s=60)
    assert (summary, read) == ("A film.", "json")
    assert [(h["start"], h["end"], h["title"]) for h in highlights] == [
        (10.0, 20.0, "Intro"), (40.0, 45.0, "Highlight 4"), (50.0, 70.0, "Chase"),
        (90.0, 100.0, "Long")]


def test_a_reduce_reply_without_json_is_its_summary_with_no_highlights():
    assert read_reduce("The video shows a race.", 0, 10, 3, 60) == (
        "The video shows a race.", [], "text")
    assert read_reduce("", 0, 10, 3, 60) == ("", [], "empty")


def test_the_questions_carry_the_times_and_what_stands_in_for_frames():
    question = chapter_question(2, 5, 60.0, 125.5, [(60.0, 70.0, "a cook\nstirs")])
    assert "chapter 2 of 5" in question and "60.0s to 125.5s" in question
    assert "60.0s-70.0s: a cook stirs" in question and json_object(
        question[question.index("{"):]) is not None  # the format asked for is JSON itself
    reduce = reduce_question(300.0, [{"start": 0.0, "end": 60.0, "title": "Intro",
                                      "summary": "Hello."}], 3, 45)
    assert "1. 0.0s-60.0s Intro: Hello." in reduce and "up to 3 highlights" in reduce


def _longest(schema: dict):
    """The longest answer a schema admits: every string at its maxLength, every array full,
    every integer at its widest bound."""
    kind = schema["type"]
    if kind == "object":
        return {k: _longest(v) for k, v in schema["properties"].items()}
    if kind == "array":
        return [_longest(schema["items"]) for _ in range(schema["maxItems"])]
    if kind == "integer":
        return max(schema["minimum"], schema["maximum"], key=lambda v: len(str(v)))
    return "x" * schema["maxLength"]


def _cost(value, tokens_per_char: float) -> float:
    """Tokens of the answer as one line of JSON: a token a structural character, a string's
    characters at tokens_per_char."""
    import json

    if isinstance(value, str):
        return 2 + len(value) * tokens_per_char
    if isinstance(value, dict):
        return 2 + sum(_cost(k, 1) + 2 + _cost(v, tokens_per_char) for k, v in value.items()) \
            + 2 * (len(value) - 1)
    if isinstance(value, list):
        return 2 + sum(_cost(v, tokens_per_char) for v in value) + 2 * max(len(value) - 1, 0)
    return len(json.dumps(value))


@pytest.mark.parametrize("cap, per_char", [(48, 1), (160, 1), (256, 1), (512, 1), (160, 6),
                                           (1024, 6)])
def test_the_schemas_longest_answer_fits_the_token_cap(cap, per_char):
    from vidsift.pipeline.flows.summary_replies import chapter_schema, reduce_schema

    chapter = chapter_schema(cap, per_char)
    assert chapter is not None and _cost(_longest(chapter), per_char) <= cap
    reduce = reduce_schema(cap, 3, 0.0, 7157.7, per_char)
    if reduce is not None:
        assert _cost(_longest(reduce), per_char) <= cap
        assert reduce["properties"]["highlights"]["maxItems"] <= 3
    assert reduce_schema(512, 3, 0.0, 7157.7)["properties"]["highlights"]["maxItems"] == 3
    assert chapter_schema(16) is None  # no room: free text

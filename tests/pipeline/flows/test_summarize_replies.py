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

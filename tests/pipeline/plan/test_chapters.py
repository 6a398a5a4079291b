"""pipeline.plan.chapters: chapters cut at the known change points of synthetic coarse frames,
within the length limits, the same every time; titles from what was read or heard."""

from __future__ import annotations

import numpy as np
import pytest

from vidsift.pipeline.plan.chapters import (SpeechLines, chapter_titles, parse_description,
                                            plan_chapters, uniform_chapters)

CHANGES = [0.0, 47.0, 90.0, 160.0, 230.0]  # seconds where the content changes
END = 300.0


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _frames(changes=CHANGES, end=END, step=1.0, noise=0.08, seed=0):
    """Coarse frames every `step` s: each stretch between change points has its own visual
    direction (plus noise) and its own text vector."""
    rng = np.random.default_rng(seed)
    times = np.arange(0.0, end, step)
    part = np.searchsorted(changes, times, side="right") - 1
    visual = _unit(_unit(rng.normal(size=(len(changes), 64)))[part]
                   + noise * rng.normal(size=(len(times), 64)))
    text = _unit(rng.normal(size=(len(changes), 32)))[part]
    return times, visual, text


def _starts(chapters):
    return [lo for lo, _ in chapters]


def test_auto_finds_exactly_the_change_points():
    times, visual, text = _frames()
    chapters = plan_chapters(times, visual, text, 0.0, END, 20, 120)
    assert _starts(chapters) == CHANGES
    assert chapters[-1][1] == END
    assert all(a[1] == b[0] for a, b in zip(chapters, chapters[1:]))


def test_a_count_gives_that_many_chapters_at_the_strongest_changes():
    times, visual, text = _frames()
    assert _starts(plan_chapters(times, visual, text, 0.0, END, 20, 300, count=5)) == CHANGES
    three = plan_chapters(times, visual, text, 0.0, END, 20, 300, count=3)
    assert len(three) == 3 and set(_starts(three)[1:]) <= set(CHANGES)


def test_lengths_hold_min_and_max():
    # a change every 8 s: chapters may not be shorter than 20 s; a steady 300 s video: none
    # longer than 60 s
    times, visual, text = _frames(changes=list(np.arange(0.0, END, 8.0)))
    for lo, hi in plan_chapters(times, visual, text, 0.0, END, 20, 60):
        assert 20 - 1e-6 <= hi - lo <= 60 + 1e-6
    times, visual, text = _frames(changes=[0.0])
    steady = plan_chapters(times, visual, text, 0.0, END, 20, 60)
    assert len(steady) == 5 and all(hi - lo <= 60 + 1e-6 for lo, hi in steady)


def test_no_change_no_cut_and_a_short_video_is_one_chapter():
    times, visual, text = _frames(changes=[0.0])
    assert plan_chapters(times, visual, text, 0.0, END, 20, 600) == [(0.0, END)]
    times, visual, text = _frames(end=15.0)
    assert plan_chapters(times, visual, text, 0.0, 15.0, 20, 600) == [(0.0, 15.0)]
    assert plan_chapters(times[:1], visual[:1], text[:1], 0.0, 15.0, 20, 600, count=4) == [(0.0, 15.0)]


def test_deterministic():
    times, visual, text = _frames(noise=0.4, seed=3)
    runs = {tuple(plan_chapters(times, visual, text, 0.0, END, 20, 120)) for _ in range(3)}
    assert len(runs) == 1


def test_boundaries_snap_to_a_keyframe_or_shot_cut_nearby():
    # frames every 2 s: the change between the frames at 46 and 48 happened at the keyframe
    # 47.3; the one between 158 and 160 at the keyframe 159 (not the later one at 161)
    times, visual, text = _frames(changes=[0.0, 47.3, 159.0], step=2.0)
    chapters = plan_chapters(times, visual, text, 0.0, END, 20, 300,
                             keyframe_times=[0.0, 10.0, 47.3, 100.0, 159.0, 161.0])
    assert _starts(chapters) == [0.0, 47.3, 159.0]


def test_speech_alone_cuts_where_the_topic_changes():
    # the picture never changes; the transcript's lines change topic at 120 s
    times, visual, text = _frames(changes=[0.0])
    visual[:], text[:] = visual[0], text[0]
    rng = np.random.default_rng(1)
    topics = _unit(rng.normal(size=(2, 48)))
    spans = np.array([(s, s + 5.5) for s in np.arange(0.0, END, 6.0)])
    topic = (spans[:, 0] >= 120).astype(int)
    vectors = _unit(topics[topic] + 0.5 * _unit(rng.normal(size=(len(spans), 48))))
    chapters = plan_chapters(times, visual, text, 0.0, END, 20, 600,
                             speech=SpeechLines(spans, vectors))
    assert _starts(chapters) == [0.0, 120.0]  # snapped to the first line of the new topic


def test_bad_arguments_are_value_errors():
    times, visual, text = _frames()
    with pytest.raises(ValueError, match="empty time range"):
        plan_chapters(times, visual, text, 5.0, 5.0, 20, 120)
    with pytest.raises(ValueError, match="min_s"):
        plan_chapters(times, visual, text, 0.0, END, 0, 120)
    with pytest.raises(ValueError, match="count"):
        plan_chapters(times, visual, text, 0.0, END, 20, 120, count=0)


def test_uniform_chapters():
    assert uniform_chapters(0.0, 30.0, 3) == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]


def test_titles_come_from_text_then_speech_then_labels():
    descriptions = ["labels: tabby, tiger cat | text: STOP NOW", "labels: tabby",
                    "labels: volcano | text: Lecture 7", "labels: volcano | text: Lecture 7",
                    "labels: volcano | text: Lecture 7", "labels: seashore, sandbar",
                    "labels: seashore"]
    members = [np.array([0, 1]), np.array([2, 3]), np.array([4]), np.array([5, 6])]
    speech = ["", "the lava erupts from the volcano and the lava flows", "", ""]
    titles = chapter_titles(descriptions, members, speech)
    assert [(t.title, t.source) for t in titles] == [
        ("STOP NOW", "text"),
        ("lava, erupts, flows, volcano", "speech"),  # the slide's text is in another chapter too
        ("Lecture 7", "text"),
        ("seashore, sandbar", "labels"),
    ]
    assert titles[0].labels == ("tabby", "tiger cat") and titles[1].text == ("Lecture 7",)
    assert chapter_titles(["", ""], [np.array([0]), np.array([1])])[0].source == ""


def test_parse_description():
    assert parse_description("labels: a, b c | text: HELLO  WORLD") == (["a", "b c"], "HELLO WORLD")
    assert parse_description("a red bus on a street") == ([], "a red bus on a street")

"""The shared evidence layout and the citation parser (pure, no model)."""

from __future__ import annotations

import dataclasses

import pytest

from vidsift.core.types import PlannedSegment, SegmentKind, TokenSet
from vidsift.workers.vlm import prompt
from vidsift.workers.vlm.prompt import (
    CITE_INSTRUCTION, Visual, evidence_parts, parse_citations, segment_labels, time_tag,
)


def _segment(start: float, end: float, frames: int) -> PlannedSegment:
    kind = SegmentKind.IMAGE if frames == 1 else SegmentKind.CLIP
    step = (end - start) / max(frames - 1, 1)
    times = tuple(start + k * step for k in range(frames))
    return PlannedSegment(kind, start, end, times, 56, 56, 4)


def _token_set() -> TokenSet:
    """Three segments: an image at 1.0 s, a clip 12.5-16.5 s, an image at 30.25 s."""
    return TokenSet("/videos/talk.mp4",
                    [_segment(1.0, 1.0, 1), _segment(12.5, 16.5, 5), _segment(30.25, 30.25, 1)])


def test_time_tags_of_images_and_clips():
    image, clip, last = _token_set().segments
    assert [time_tag(image), time_tag(clip), time_tag(last)] == [
        "<t=1.0s>", "<t=12.5s-16.5s>", "<t=30.2s>"]


def test_parts_number_the_segments_then_instruct_then_ask():
    parts = evidence_parts(_token_set(), "What is on the slide?")
    assert parts == [
        "[1] <t=1.0s>", Visual(0),
        "\n[2] <t=12.5s-16.5s>", Visual(1),
        "\n[3] <t=30.2s>", Visual(2),
        "\n" + CITE_INSTRUCTION + "\n",
        "What is on the slide?",
    ]


def test_no_segments_is_the_question_alone():
    assert evidence_parts(TokenSet("v.mp4"), "Why?") == ["Why?"]


def test_backend_time_format_is_used():
    parts = evidence_parts(_token_set(), "Q", time_format=lambda s: f"<{s.start:g} seconds>")
    assert parts[0] == "[1] <1 seconds>" and parts[2] == "\n[2] <12.5 seconds>"


def test_labels_name_the_video_when_segments_span_several(monkeypatch):
    token_set = _token_set()
    assert segment_labels(token_set)[0] == "[1] <t=1.0s>"  # one video: no name
    monkeypatch.setattr(prompt, "segment_videos",
                        lambda ts: ["/a/intro.mp4", "/b/talk.mp4", "/b/talk.mp4"])
    assert segment_labels(token_set) == [
        "[1] intro.mp4 <t=1.0s>", "[2] talk.mp4 <t=12.5s-16.5s>", "[3] talk.mp4 <t=30.2s>"]
    assert parse_citations("see [1]", token_set)[0]["video"] == "/a/intro.mp4"


@pytest.mark.parametrize("text, numbers", [
    ("The speaker points at the chart [2].", [2]),
    ("First [3], then [1] and again [3].", [3, 1]),
    ("Both [2,3] agree.", [2, 3]),
    ("Both [2, 3] agree; also [1; 2].", [2, 3, 1]),
    ("Across [1-3].", [1, 2, 3]),
    ("Across [1 \u2013 2] (en dash) and [2 to 3].", [1, 2, 3]),
    ("As in [segment 3] and [Segments 1 and 2].", [3, 1, 2]),
    ("[#2] shows it", [2]),
    ("Out of range [0], [4], [99] but [2] is real.", [2]),
    ("A range past the end [2-100000] keeps what exists.", [2, 3]),
    ("Not citations: [t=3.0s], [2.5], [a], [], [ ], [1, x].", []),
    ("No brackets at all, segment 2.", []),
    ("", []),
])
def test_parse_citations(text, numbers):
    token_set = _token_set()
    citations = parse_citations(text, token_set)
    assert [c["segment"] for c in citations] == numbers
    for citation in citations:
        segment = token_set.segments[citation["segment"] - 1]
        assert (citation["start"], citation["end"]) == (segment.start, segment.end)
        assert citation["video"] == "/videos/talk.mp4"


def test_citations_give_exact_seconds():
    assert parse_citations("[2]", _token_set()) == [
        {"segment": 2, "start": 12.5, "end": 16.5, "video": "/videos/talk.mp4"}]


def test_decoded_single_frame_clip_is_tagged_as_an_image():
    """A clip whose decode kept one frame is shown as an image, and tagged as one."""
    clip = _token_set().segments[1]
    decoded = dataclasses.replace(clip, frames=(object(),))
    assert time_tag(decoded) == "<t=12.5s>"


# ---- conversation history (follow-up questions) ----------------------------------------------

from vidsift.core.types import HistoryTurn  # noqa: E402
from vidsift.workers.vlm.prompt import fit_history, history_text  # noqa: E402

TALK = "/videos/talk.mp4"


def _turn(question: str, answer: str) -> HistoryTurn:
    return HistoryTurn(question, answer, evidence=(
        (TALK, 1.0, 1.0), (TALK, 12.5, 16.5), (TALK, 30.25, 30.25)))


def test_history_spells_earlier_citations_as_times_so_numbers_never_collide():
    text = history_text([_turn("Where is the chart?", "On the slide [2], also [1, 3] [t=3s]."),
                         HistoryTurn("And after?", "(not answered)")])
    assert text == (
        "Earlier in this conversation (times are seconds in the video):\n"
        "Q1 (evidence 1.0s, 12.5s-16.5s, 30.2s): Where is the chart?\n"
        "A1: On the slide (12.5s-16.5s), also (1.0s, 30.2s) [t=3s].\n"
        "Q2: And after?\n"
        "A2: (not answered)\n"
        "Evidence for the new question:\n")
    # What the model reads of an earlier answer is no citation of the new evidence.
    assert parse_citations(text, _token_set()) == []
    assert history_text([]) == ""


def test_history_names_the_videos_of_a_turn_across_several():
    turn = HistoryTurn("Which talk shows a chart?", "This one [2].", evidence=(
        ("/a/intro.mp4", 3.0, 3.0), ("/b/talk.mp4", 12.5, 16.5)))
    assert history_text([turn]).splitlines()[1:3] == [
        "Q1 (evidence intro.mp4 3.0s; talk.mp4 12.5s-16.5s): Which talk shows a chart?",
        "A1: This one (talk.mp4 12.5s-16.5s)."]


def test_history_goes_before_the_numbered_evidence():
    turns = [_turn("Q one?", "A one [1].")]
    parts = evidence_parts(_token_set(), "Q two?", history=turns)
    assert parts[0] == history_text(turns)
    assert parts[1:] == evidence_parts(_token_set(), "Q two?")


def test_fit_history_drops_the_oldest_turns_first_with_exact_counts():
    turns = [_turn(f"Question {n}?", f"Answer {n} [2].") for n in range(1, 5)]
    sizes = [len(history_text(turns[first:])) for first in range(4)]  # count: 1 per character
    assert sizes == sorted(sizes, reverse=True)
    assert fit_history(turns, sizes[0], len) == (tuple(turns), sizes[0])
    assert fit_history(turns, sizes[0] - 1, len) == (tuple(turns[1:]), sizes[1])
    assert fit_history(turns, sizes[2], len) == (tuple(turns[2:]), sizes[2])
    assert fit_history(turns, sizes[3] - 1, len) == ((), 0)
    assert fit_history([], 100, len) == ((), 0)


def test_segments_name_their_own_video():
    token_set = _token_set()
    token_set.segments[1] = dataclasses.replace(token_set.segments[1], video="/b/other.mp4")
    assert prompt.segment_videos(token_set) == [TALK, "/b/other.mp4", TALK]
    assert segment_labels(token_set)[1] == "[2] other.mp4 <t=12.5s-16.5s>"
    assert parse_citations("[2]", token_set)[0]["video"] == "/b/other.mp4"


def test_transcript_block_follows_the_evidence_with_its_times():
    from vidsift.core.types import TranscriptSegment
    from vidsift.workers.vlm.prompt import transcript_text

    lines = (TranscriptSegment(6.0, 9.0, "The vault code\nis 7429", "subtitles"),
             TranscriptSegment(11.25, 11.25, "Thanks"))
    assert transcript_text(lines) == (
        "Said during this evidence (times are seconds in the video):\n"
        "6.0s-9.0s: The vault code is 7429\n"
        "11.2s: Thanks\n")
    assert transcript_text(()) == ""
    parts = evidence_parts(_token_set(), "What is the code?", transcript=lines)
    # after the last visual, before the instruction
    assert parts[-4:] == [Visual(len(_token_set().segments) - 1), "\n" + transcript_text(lines),
                          CITE_INSTRUCTION + "\n", "What is the code?"]
    assert evidence_parts(_token_set(), "q")[-2:] == ["\n" + CITE_INSTRUCTION + "\n", "q"]
    # no evidence: the transcript and the question alone
    empty = dataclasses.replace(_token_set(), segments=[])
    assert evidence_parts(empty, "q", transcript=lines) == [transcript_text(lines), "q"]


def test_fit_transcript_drops_the_lines_furthest_from_the_question_first():
    from vidsift.core.types import TranscriptSegment
    from vidsift.workers.vlm.prompt import fit_transcript, transcript_text

    lines = [TranscriptSegment(float(n), n + 1.0, f"line number {n}") for n in range(4)]
    scores = [0.2, 0.9, 0.1, 0.5]
    every = len(transcript_text(lines))
    assert fit_transcript(lines, scores, every, len) == (tuple(lines), every)
    # one line less: the lowest score (line 2) goes, time order kept
    kept = (lines[0], lines[1], lines[3])
    assert fit_transcript(lines, scores, every - 1, len) == (kept, len(transcript_text(kept)))
    best = (lines[1],)
    assert fit_transcript(lines, scores, len(transcript_text(best)), len) == (
        best, len(transcript_text(best)))
    assert fit_transcript(lines, scores, len(transcript_text(best)) - 1, len) == ((), 0)
    assert fit_transcript([], [], 100, len) == ((), 0)

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

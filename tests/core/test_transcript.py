"""Subtitle parsing to the millisecond, word grouping and overlap: pure functions."""

from __future__ import annotations

import pytest

from vidsift.core.transcript import (
    SubtitleParseError, group_words, overlapping, parse_subtitles, sort_segments,
)
from vidsift.core.types import Transcript
from vidsift.core.types import TranscriptSegment as Seg

SRT = """\ufeff1
00:00:01,250 --> 00:00:03,500
The password is <i>falcon</i>

2
01:02:03,007 --> 01:02:04,100
Two
lines
"""

VTT = """WEBVTT - a title

NOTE this is a comment
with two lines

intro
00:01.5 --> 00:02.250 align:start position:10%
<v Roger>Hello there</v>

00:00:10.000 --> 00:00:11.001
Last
"""

ASS = """[Script Info]
Title: x

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:01.25,0:00:03.50,Default,,0,0,0,,{\\i1}The password{\\i0}, is falcon
Dialogue: 0,1:02:03.07,1:02:04.10,Default,,0,0,0,,Two\\Nlines
"""


def test_srt_exact_times_and_text():
    assert parse_subtitles(SRT, ".srt", "s") == [
        Seg(1.25, 3.5, "The password is falcon", "s"), Seg(3723.007, 3724.1, "Two\nlines", "s")]


def test_vtt_header_notes_settings_and_voice_tags():
    assert parse_subtitles(VTT, ".vtt") == [Seg(1.5, 2.25, "Hello there"), Seg(10.0, 11.001, "Last")]


def test_vtt_character_references_are_decoded_after_the_tags_are_dropped():
    """WebVTT writes & < > as &amp; &lt; &gt;: they are text (an escaped tag stays), as a
    player shows them; SRT has no escapes, so there they are the characters written."""
    vtt = "WEBVTT\n\n00:01.000 --> 00:02.000\n&lt;b&gt; &amp; &lt;/b&gt; <i>x</i> &#62; &nbsp;y\n"
    assert parse_subtitles(vtt, ".vtt")[0].text == "<b> & </b> x > y"  # &nbsp; a space
    srt = "1\n00:00:01,000 --> 00:00:02,000\nTom &amp; Jerry\n"
    assert parse_subtitles(srt, ".srt")[0].text == "Tom &amp; Jerry"


def test_ass_fields_overrides_and_breaks():
    assert parse_subtitles(ASS, ".ass") == [
        Seg(1.25, 3.5, "The password, is falcon"), Seg(3723.07, 3724.1, "Two\nlines")]


@pytest.mark.parametrize("text, suffix, message", [
    ("1\n00:00:01,000 --> garbage\nx\n", ".srt", "line 2: malformed timing"),
    ("1\n00:00:05,000 --> 00:00:01,000\nx\n", ".srt", "ends before it starts"),
    ("just some text", ".srt", "no subtitle cues"),
    ("[Events]\nDialogue: 0,0:00:01.00,0:00:02.00,,,0,0,0,,x\n", ".ass", r"before the \[Events\] Format"),
    ("Format: Start, End, Text\nDialogue: 1:2,0:00:02.00,x\n", ".ass", "malformed start time"),
    ("hello", ".sub", "unknown subtitle format"),
])
def test_broken_subtitles_name_the_problem(text, suffix, message):
    with pytest.raises(SubtitleParseError, match=message):
        parse_subtitles(text, suffix)


def test_sort_drops_exact_duplicates():
    a, b = Seg(2, 3, "b"), Seg(1, 2, "a")
    assert sort_segments([a, b, a]) == [b, a]


def test_group_words_splits_at_pauses_and_length():
    words = [(0.0, 0.4, "a"), (0.5, 0.9, "b"), (2.0, 2.3, "c"), (2.3, 2.6, "d")]
    assert group_words(words, max_gap_s=0.5) == [Seg(0.0, 0.9, "a b"), Seg(2.0, 2.6, "c d")]
    assert group_words(words, max_gap_s=5, max_len_s=1.0) == [Seg(0.0, 0.9, "a b"), Seg(2.0, 2.6, "c d")]
    assert group_words([]) == []


def test_overlapping_half_open():
    segs = [Seg(0, 1, "a"), Seg(1, 2, "b"), Seg(3, 3, "point")]
    assert [s.text for s in overlapping(segs, 1, 3)] == ["b"]
    assert [s.text for s in overlapping(segs, 0.5, 1.5)] == ["a", "b"]
    assert [s.text for s in overlapping(segs, 3, 4)] == ["point"]


def test_transcript_round_trips_through_dict():
    t = Transcript([Seg(1.25, 3.5, "x", "sidecar:a.srt")], ["sidecar a.srt"], ["note"])
    assert Transcript.from_dict(t.to_dict()) == t

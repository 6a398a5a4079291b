"""SRT / WebVTT / JSONL caption files: exact timestamps and layout, and the text read back as
other programs read it: webvtt-py, pysrt and ffmpeg (converting the file to ASS)."""

from __future__ import annotations

import html
import json

import pysrt
import pytest
import webvtt

from tests.videos import run_ffmpeg
from vidsift.core.transcript import parse_subtitles
from vidsift.pipeline.flows.subtitles import Cue, format_timestamp, srt_text, vtt_text, write_subtitles


@pytest.mark.parametrize(
    ("seconds", "srt", "vtt"),
    [
        (0.0, "00:00:00,000", "00:00:00.000"),
        (1.5, "00:00:01,500", "00:00:01.500"),
        (59.9996, "00:01:00,000", "00:01:00.000"),  # rounds to the millisecond, carries over
        (3723.042, "01:02:03,042", "01:02:03.042"),
        (-0.2, "00:00:00,000", "00:00:00.000"),  # clamped
        (360000.0, "100:00:00,000", "100:00:00.000"),
    ],
)
def test_timestamp_format(seconds, srt, vtt):
    assert format_timestamp(seconds, ",") == srt
    assert format_timestamp(seconds, ".") == vtt


CUES = [Cue(0.0, 4.0, "A rabbit wakes up."), Cue(4.0, 8.25, "It walks\n\n out --> of the hole.")]


def test_srt_layout():
    assert srt_text(CUES) == (
        "1\n00:00:00,000 --> 00:00:04,000\nA rabbit wakes up.\n\n"
        "2\n00:00:04,000 --> 00:00:08,250\nIt walks\nout -> of the hole.\n"
    )


def test_vtt_layout():
    assert vtt_text(CUES) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:04.000\nA rabbit wakes up.\n\n"
        "00:00:04.000 --> 00:00:08.250\nIt walks\nout --&gt; of the hole.\n"
    )


def test_write_subtitles_sorts_and_writes_each_format(tmp_path):
    paths = write_subtitles(tmp_path / "clip", [CUES[1], CUES[0]], ("srt", "vtt", "jsonl"))
    assert [p.name for p in paths] == ["clip.srt", "clip.vtt", "clip.jsonl"]
    assert (tmp_path / "clip.srt").read_text().startswith("1\n00:00:00,000 --> 00:00:04,000\n")
    rows = [json.loads(line) for line in (tmp_path / "clip.jsonl").read_text().splitlines()]
    assert rows[0] == {"start": 0.0, "end": 4.0, "text": "A rabbit wakes up."}
    assert not list(tmp_path.glob(".*tmp*"))


# Captions a VLM may write: markup-like text, comparisons, ampersands, an arrow, several lines.
TRICKY = ["<b> & </b>", "a < b and c > d", "Tom & Jerry &amp; friends", "x --> y",
          "<i>not italic</i>\nsecond line &lt;", "fish &chips; 5 > 3"]


def _ffmpeg_dialogue(path, tmp_path) -> list[str]:
    """ffmpeg's reading of a subtitle file: converted to ASS, each event's text as plain text
    (ASS line breaks \\N as newlines)."""
    out = tmp_path / f"{path.name}.ass"
    run_ffmpeg("-i", str(path), str(out))
    events = [line.split(",", 9)[9] for line in out.read_text().splitlines()
              if line.startswith("Dialogue:")]
    return [event.replace("\\N", "\n") for event in events]


def test_webvtt_text_reads_back_identical_through_webvtt_py_ffmpeg_and_our_parser(tmp_path):
    cues = [Cue(2.0 * n, 2.0 * n + 1.5, text) for n, text in enumerate(TRICKY)]
    (path,) = write_subtitles(tmp_path / "captions", cues, ("vtt",))
    # webvtt-py drops cue tags and leaves character references as written: decoded here
    assert [html.unescape(c.text) for c in webvtt.read(str(path))] == TRICKY
    assert _ffmpeg_dialogue(path, tmp_path) == TRICKY
    assert [s.text for s in parse_subtitles(path.read_text(), ".vtt")] == TRICKY


def test_srt_text_reads_back_identical_through_pysrt(tmp_path):
    cues = [Cue(2.0 * n, 2.0 * n + 1.5, text) for n, text in enumerate(TRICKY)]
    (path,) = write_subtitles(tmp_path / "captions", cues, ("srt",))
    # SRT has no escapes: pysrt reads what was written, so only the timing arrow is changed
    assert [c.text for c in pysrt.open(str(path))] == [
        t.replace("-->", "->") for t in TRICKY]


def test_srt_lines_that_look_like_timings_or_blank_lines_start_no_cue(tmp_path):
    """ffmpeg's SRT reader starts a cue at any line that reads as a timing (and takes a number
    line before it as the cue's number), and a blank line ends a cue in every reader: each cue
    stays one cue, its text whole, in pysrt and ffmpeg alike."""
    texts = ["first\n\nafter a blank line", "5\n00:00:07,000 --> 00:00:08,000\nend",
             "Tom & Jerry: 1 < 2\nChapter\n3"]
    cues = [Cue(10.0 * n, 10.0 * n + 4, text) for n, text in enumerate(texts)]
    (path,) = write_subtitles(tmp_path / "captions", cues, ("srt",))
    expected = ["first\nafter a blank line", "5\n00:00:07,000 -> 00:00:08,000\nend",
                "Tom & Jerry: 1 < 2\nChapter\n3"]
    read = pysrt.open(str(path))
    assert [c.text for c in read] == expected
    assert [c.start.ordinal for c in read] == [0, 10_000, 20_000]
    assert _ffmpeg_dialogue(path, tmp_path) == expected

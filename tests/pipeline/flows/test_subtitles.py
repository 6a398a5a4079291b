"""SRT / WebVTT / JSONL caption files: exact timestamps and layout."""

from __future__ import annotations

import json

import pytest

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
        "00:00:04.000 --> 00:00:08.250\nIt walks\nout -> of the hole.\n"
    )


def test_write_subtitles_sorts_and_writes_each_format(tmp_path):
    paths = write_subtitles(tmp_path / "clip", [CUES[1], CUES[0]], ("srt", "vtt", "jsonl"))
    assert [p.name for p in paths] == ["clip.srt", "clip.vtt", "clip.jsonl"]
    assert (tmp_path / "clip.srt").read_text().startswith("1\n00:00:00,000 --> 00:00:04,000\n")
    rows = [json.loads(line) for line in (tmp_path / "clip.jsonl").read_text().splitlines()]
    assert rows[0] == {"start": 0.0, "end": 4.0, "text": "A rabbit wakes up."}
    assert not list(tmp_path.glob(".*tmp*"))

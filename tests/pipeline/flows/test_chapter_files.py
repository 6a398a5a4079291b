"""Chapter exports: ffmetadata muxed by ffmpeg and read back by ffprobe, WebVTT chapter cues,
video-site lines and Markdown."""

from __future__ import annotations

import html
import json
import subprocess

import pytest
import webvtt

from tests.videos import ffmpeg_available, make_coded_video, run_ffmpeg
from vidsift.core.errors import ConfigError
from vidsift.pipeline.flows.chapter_files import (
    CHAPTER_FORMATS,
    ChapterExportError,
    chapters_text,
    write_chapter_file,
)

needs_ffmpeg = pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg not installed")

TRICKY = "a=b; c#d \\ e\nsecond line"


def summary_of(*spans, titles=None, **extra):
    titles = titles or [f"part {n}" for n in range(1, len(spans) + 1)]
    return {"chapters": [{"start": s, "end": e, "title": t, "summary": f"about {t}",
                          "thumbnail": None, "evidence": []}
                         for (s, e), t in zip(spans, titles)], **extra}


@needs_ffmpeg
@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_ffmetadata_muxed_by_ffmpeg_reads_back_the_same_titles_and_times(tmp_path, container):
    video = make_coded_video(tmp_path / "in.mp4", n_frames=250, fps=25)
    titles = [TRICKY, "Ünïcode 日本 [x]", "plain"]
    summary = summary_of((0.0, 3.2), (3.2, 7.04), (7.04, 10.0), titles=titles)
    # given out of order: written by start time
    summary["chapters"].reverse()
    metadata = write_chapter_file(tmp_path / "chapters.txt", "ffmetadata", summary)
    out = tmp_path / f"out.{container}"
    run_ffmpeg("-i", str(video), "-i", str(metadata), "-map_metadata", "1", "-map_chapters", "1",
               "-c", "copy", str(out))
    probed = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_chapters", "-of", "json", str(out)],
        capture_output=True, text=True, check=True).stdout)["chapters"]
    assert [c["tags"]["title"] for c in probed] == titles
    assert [(float(c["start_time"]), float(c["end_time"])) for c in probed] == \
        [(0.0, 3.2), (3.2, 7.04), (7.04, 10.0)]


def test_ffmetadata_escapes_the_format_s_special_characters():
    text = chapters_text("ffmetadata", summary_of((0, 1.5), titles=[TRICKY]))
    assert text == (";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1500\n"
                    "title=a\\=b\\; c\\#d \\\\ e\\\nsecond line\n")


def test_vtt_chapter_cues_one_line_titles_with_character_references():
    text = chapters_text("vtt", summary_of((0, 65.5), (65.5, 3725.25),
                                           titles=["<b>Intro</b> & --> go\nnow", ""]))
    assert text == ("WEBVTT\n\n"
                    "1\n00:00:00.000 --> 00:01:05.500\n&lt;b&gt;Intro&lt;/b&gt; &amp; --&gt; go now\n\n"
                    "2\n00:01:05.500 --> 01:02:05.250\nChapter 2\n")


def test_vtt_chapters_read_back_by_webvtt_py(tmp_path):
    titles = ["<b>Intro</b> & --> go", "Ünïcode 日本", "a < b > c"]
    path = write_chapter_file(tmp_path / "chapters.vtt", "vtt",
                              summary_of((0, 10.5), (10.5, 20), (20, 31.25), titles=titles))
    cues = webvtt.read(str(path))
    assert [(c.start, c.end) for c in cues] == [
        ("00:00:00.000", "00:00:10.500"), ("00:00:10.500", "00:00:20.000"),
        ("00:00:20.000", "00:00:31.250")]
    # webvtt-py leaves character references as written: decoded here
    assert [html.unescape(c.text) for c in cues] == titles


def test_site_lines_start_at_zero_and_hours_appear_from_an_hour_on():
    text = chapters_text("youtube", summary_of((2.4, 70), (70, 3599.9), (3599.9, 3725),
                                               titles=["Intro", "Middle\npart", "End"]))
    assert text == "0:00 Intro\n1:10 Middle part\n59:59 End\n"
    hour = chapters_text("youtube", summary_of((0, 30), (30, 3600), (3600, 7322)))
    assert hour.splitlines()[-1] == "1:00:00 part 3"


def test_site_lines_fold_chapters_shorter_than_ten_seconds():
    # part 2 starts 4 s after part 1; part 5 ends 6 s after it starts (the video's end)
    summary = summary_of((0, 20), (20, 24), (24, 40), (40, 60), (60, 66))
    assert chapters_text("youtube", summary) == "0:00 part 1\n0:24 part 3\n0:40 part 4\n"


def test_site_lines_refuse_fewer_than_three_chapters():
    with pytest.raises(ChapterExportError) as caught:
        chapters_text("youtube", summary_of((0, 30), (30, 35), (35, 60)))
    assert str(caught.value) == (
        "video sites show chapters only when there are at least 3, each at least 10 s long: "
        "these 3 chapters make 2 (write md, vtt or ffmetadata instead)")


def test_markdown_has_summary_chapters_and_highlights_escaped():
    summary = summary_of((0, 75), (75, 130), titles=["# Not a *heading*", "Outro"],
                         video="/videos/talk [final].mp4", summary="A talk about <script>.",
                         highlights=[{"start": 80, "end": 90, "title": "The joke",
                                      "why": "people laugh"}])
    assert chapters_text("md", summary) == (
        "# talk \\[final\\].mp4\n\n"
        "A talk about \\<script\\>.\n\n"
        "## Chapters\n\n"
        "1. **0:00–1:15** \\# Not a \\*heading\\*: about \\# Not a \\*heading\\*\n"
        "2. **1:15–2:10** Outro: about Outro\n\n"
        "## Highlights\n\n"
        "- **1:20–1:30** The joke: people laugh\n")


def test_unknown_format_names_the_choices():
    assert CHAPTER_FORMATS == ("md", "vtt", "ffmetadata", "youtube")
    with pytest.raises(ConfigError) as caught:
        chapters_text("srt", summary_of((0, 1)))
    assert str(caught.value) == "chapter format 'srt': choose one of md | vtt | ffmetadata | youtube"


def test_a_chapter_ending_before_its_start_is_refused(tmp_path):
    with pytest.raises(ChapterExportError) as caught:
        write_chapter_file(tmp_path / "c.vtt", "vtt", summary_of((0, 5), (5, 4)))
    assert str(caught.value) == "chapter 2 ends at 4.000 s, not after its start 5.000 s"
    assert not list(tmp_path.iterdir())


def test_site_lines_a_short_first_chapter_gives_zero_to_the_next():
    summary = summary_of((0, 4), (4, 30), (30, 50), (50, 70))
    assert chapters_text("youtube", summary) == "0:00 part 2\n0:30 part 3\n0:50 part 4\n"

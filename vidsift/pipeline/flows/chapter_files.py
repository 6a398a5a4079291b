"""Chapter exports people use: a video's chapters as WebVTT chapter cues, as an ffmetadata file
ffmpeg muxes into MP4/MKV chapter markers, as "0:00 Title" lines video sites read from a
description, and as Markdown.

One entry point, chapters_text(fmt, summary) -> text (write_chapter_file writes it atomically).
`summary` is summarize's result, or any mapping with at least "chapters":
  chapters: [{start, end, title, summary?, ...}], seconds on the video's timeline, any order
  video?, duration?, summary?: the video's summary (Markdown only)
  highlights?: [{start, end, title, why}] (Markdown only)
Titles are single lines in the line-based formats (WebVTT, the video-site lines, Markdown): runs
of whitespace, newlines included, become one space. ffmetadata keeps a title as given, escaped.
A chapter without a title is "Chapter N".
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vidsift.core.errors import ConfigError, VidsiftError
from vidsift.core.files import write_atomic
from vidsift.pipeline.flows.subtitles import format_timestamp

# Video sites' description chapters (YouTube's rules; Vimeo reads the same lines): the first at
# 0:00, times ascending, at least three chapters, each at least ten seconds long.
SITE_MIN_CHAPTERS = 3
SITE_MIN_CHAPTER_S = 10


class ChapterExportError(VidsiftError):
    """The chapters cannot be written in the asked format (too few for a video site, a chapter
    ending before it starts)."""


def _chapters(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The chapters by start time, each with a float start and end and a title (as given, or
    "Chapter N")."""
    ordered = sorted(summary["chapters"], key=lambda chapter: float(chapter["start"]))
    chapters = []
    for number, chapter in enumerate(ordered, start=1):
        start, end = float(chapter["start"]), float(chapter["end"])
        if not end > start:
            raise ChapterExportError(
                f"chapter {number} ends at {end:.3f} s, not after its start {start:.3f} s")
        title = str(chapter.get("title") or "").strip() or f"Chapter {number}"
        chapters.append({**chapter, "start": start, "end": end, "title": title})
    return chapters


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def clock(seconds: float) -> str:
    """seconds -> M:SS, or H:MM:SS from an hour on (whole seconds, rounded down): how video
    sites write a chapter's time."""
    total = max(0, int(seconds))
    hours, minutes, secs = total // 3600, total % 3600 // 60, total % 60
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def vtt_chapters_text(summary: Mapping[str, Any]) -> str:
    """WebVTT for a <track kind="chapters">: one numbered cue per chapter, its title the cue
    text (&, < and > as character references, so "-->" cannot end up in it)."""
    blocks = ["WEBVTT\n"]
    for number, chapter in enumerate(_chapters(summary), start=1):
        title = html.escape(_one_line(chapter["title"]), quote=False)
        timing = f"{format_timestamp(chapter['start'], '.')} --> " \
                 f"{format_timestamp(chapter['end'], '.')}"
        blocks.append(f"{number}\n{timing}\n{title}\n")
    return "\n".join(blocks)


_FFMETADATA_SPECIAL = re.compile(r"([=;#\\\n])")


def _ffmetadata_value(text: str) -> str:
    # ffmpeg's ffmetadata format: '=', ';', '#', '\' and a newline are escaped with a backslash.
    return _FFMETADATA_SPECIAL.sub(r"\\\1", text)


def ffmetadata_text(summary: Mapping[str, Any]) -> str:
    """An ffmetadata file of the chapters (milliseconds): muxed into a video by
    `ffmpeg -i in.mp4 -i chapters.txt -map_metadata 1 -map_chapters 1 -c copy out.mp4`."""
    lines = [";FFMETADATA1"]
    for chapter in _chapters(summary):
        lines += ["[CHAPTER]", "TIMEBASE=1/1000",
                  f"START={round(chapter['start'] * 1000)}", f"END={round(chapter['end'] * 1000)}",
                  f"title={_ffmetadata_value(chapter['title'])}"]
    return "\n".join(lines) + "\n"


def site_chapters(summary: Mapping[str, Any]) -> list[tuple[int, str]]:
    """The chapters as a video site takes them: [(start in whole seconds, one-line title)], the
    first at 0. A chapter shorter than SITE_MIN_CHAPTER_S (to the next chapter's start, or the
    video's end) is left out: the chapter before it runs on over it, or, when it is the first,
    the next one starts at 0. ChapterExportError when fewer than SITE_MIN_CHAPTERS remain."""
    chapters = _chapters(summary)
    starts = [0] + [int(chapter["start"]) for chapter in chapters[1:]]
    stops = starts[1:] + [int(float(summary.get("duration") or chapters[-1]["end"]))]
    kept = [(start, _one_line(chapter["title"]))
            for chapter, start, stop in zip(chapters, starts, stops)
            if stop - start >= SITE_MIN_CHAPTER_S]
    if len(kept) < SITE_MIN_CHAPTERS:
        raise ChapterExportError(
            f"video sites show chapters only when there are at least {SITE_MIN_CHAPTERS}, each "
            f"at least {SITE_MIN_CHAPTER_S} s long: these {len(chapters)} chapters make "
            f"{len(kept)} (write md, vtt or ffmetadata instead)")
    return [(0, kept[0][1]), *kept[1:]]


def site_lines_text(summary: Mapping[str, Any]) -> str:
    """"0:00 Title" lines to paste into a video's description (see site_chapters)."""
    return "".join(f"{clock(start)} {title}\n" for start, title in site_chapters(summary))


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def _markdown(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _one_line(text))


def markdown_text(summary: Mapping[str, Any]) -> str:
    """The video's name and summary, its chapters (time span, title, summary) and highlights
    (time span, title, why), as Markdown; text from the model or the video is escaped, so it
    cannot turn into headings, links or HTML."""
    chapters = _chapters(summary)
    video = summary.get("video")
    parts = [f"# {_markdown(Path(video).name)}\n" if video else "# Chapters\n"]
    if summary.get("summary"):
        parts.append(f"{_markdown(summary['summary'])}\n")
    if video:
        parts.append("## Chapters\n")
    items = []
    for number, chapter in enumerate(chapters, start=1):
        line = f"{number}. **{clock(chapter['start'])}–{clock(chapter['end'])}** " \
               f"{_markdown(chapter['title'])}"
        if chapter.get("summary"):
            line += f": {_markdown(chapter['summary'])}"
        items.append(line)
    parts.append("\n".join(items) + "\n")
    highlights = sorted(summary.get("highlights") or (), key=lambda h: float(h["start"]))
    if highlights:
        parts.append("## Highlights\n")
        parts.append("\n".join(
            f"- **{clock(float(h['start']))}–{clock(float(h['end']))}** "
            f"{_markdown(h.get('title') or 'Highlight')}"
            + (f": {_markdown(h['why'])}" if h.get("why") else "")
            for h in highlights) + "\n")
    return "\n".join(parts)


WRITERS = {"md": markdown_text, "vtt": vtt_chapters_text, "ffmetadata": ffmetadata_text,
           "youtube": site_lines_text}
CHAPTER_FORMATS: tuple[str, ...] = tuple(WRITERS)


def chapters_text(fmt: str, summary: Mapping[str, Any]) -> str:
    """The chapters of `summary` (see the module doc) as the format `fmt` (CHAPTER_FORMATS)."""
    writer = WRITERS.get(fmt)
    if writer is None:
        raise ConfigError(f"chapter format {fmt!r}: choose one of {' | '.join(CHAPTER_FORMATS)}")
    return writer(summary)


def write_chapter_file(path: str | os.PathLike, fmt: str, summary: Mapping[str, Any]) -> Path:
    """Write chapters_text(fmt, summary) to path (whole or not at all); returns the path."""
    text = chapters_text(fmt, summary)
    write_atomic(path, text)
    return Path(path)

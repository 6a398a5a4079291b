"""Per-video caption files: SRT, WebVTT and JSONL, from (start, end, text) cues in seconds.

Timestamps are rounded to the millisecond once (so a cue's end never formats before its start),
clamped at 0, and written as HH:MM:SS,mmm (SRT) or HH:MM:SS.mmm (WebVTT); hours grow past 99.

Cue text is written so that readers get it back (tests/pipeline/flows/test_subtitles.py reads it
with webvtt-py, pysrt and ffmpeg): blank lines inside a cue are dropped (a blank line ends a cue
in both formats). WebVTT escapes `&`, `<` and `>` as character references, so markup-like text
stays text and "-->" cannot read as a timing. SRT has no escapes (pysrt and ffmpeg read `&lt;`
as those four characters): its text is written as is, except that "-->" becomes "->", since
ffmpeg starts a new cue at any line that reads as a timing. Players still take SRT's own markup
(<b>, <i>, {\\an8}) as formatting; WebVTT is the format that keeps every caption verbatim.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

from vidsift.core.files import write_atomic


@dataclass(frozen=True, slots=True)
class Cue:
    start: float  # seconds
    end: float  # seconds
    text: str


def _millis(seconds: float) -> int:
    return max(0, int(round(seconds * 1000)))


def format_timestamp(seconds: float, separator: str) -> str:
    """seconds -> HH:MM:SS{separator}mmm (separator ',' for SRT, '.' for WebVTT)."""
    total = _millis(seconds)
    hours, rest = divmod(total, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_lines(text: str) -> str:
    """The cue's lines, stripped, blank ones dropped; "..." for a cue with no text (a cue
    needs a line)."""
    return "\n".join(line.strip() for line in text.splitlines() if line.strip()) or "..."


def _srt_cue_text(text: str) -> str:
    return _cue_lines(text).replace("-->", "->")


def _vtt_cue_text(text: str) -> str:
    return html.escape(_cue_lines(text), quote=False)  # & < > as &amp; &lt; &gt;


def srt_text(cues: list[Cue]) -> str:
    blocks = []
    for number, cue in enumerate(cues, start=1):
        timing = f"{format_timestamp(cue.start, ',')} --> {format_timestamp(cue.end, ',')}"
        blocks.append(f"{number}\n{timing}\n{_srt_cue_text(cue.text)}\n")
    return "\n".join(blocks)


def vtt_text(cues: list[Cue]) -> str:
    blocks = ["WEBVTT\n"]
    for cue in cues:
        timing = f"{format_timestamp(cue.start, '.')} --> {format_timestamp(cue.end, '.')}"
        blocks.append(f"{timing}\n{_vtt_cue_text(cue.text)}\n")
    return "\n".join(blocks)


def jsonl_text(cues: list[Cue]) -> str:
    return "".join(
        json.dumps({"start": cue.start, "end": cue.end, "text": cue.text}) + "\n" for cue in cues
    )


WRITERS = {"srt": srt_text, "vtt": vtt_text, "jsonl": jsonl_text}


def write_subtitles(
    stem: Path, cues: list[Cue], formats: tuple[str, ...] = ("srt", "vtt")
) -> list[Path]:
    """Write stem.srt / stem.vtt / stem.jsonl (those asked for); returns the paths written."""
    cues = sorted(cues, key=lambda c: (c.start, c.end))
    written = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        write_atomic(path, WRITERS[fmt](cues))
        written.append(path)
    return written

"""Per-video caption files: SRT, WebVTT and JSONL, from (start, end, text) cues in seconds.

Timestamps are rounded to the millisecond once (so a cue's end never formats before its start),
clamped at 0, and written as HH:MM:SS,mmm (SRT) or HH:MM:SS.mmm (WebVTT); hours grow past 99.
"""

from __future__ import annotations

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


def _cue_text(text: str) -> str:
    # A blank line ends a cue in both formats, and "-->" would read as a timing line in WebVTT.
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines).replace("-->", "->") or "..."


def srt_text(cues: list[Cue]) -> str:
    blocks = []
    for number, cue in enumerate(cues, start=1):
        timing = f"{format_timestamp(cue.start, ',')} --> {format_timestamp(cue.end, ',')}"
        blocks.append(f"{number}\n{timing}\n{_cue_text(cue.text)}\n")
    return "\n".join(blocks)


def vtt_text(cues: list[Cue]) -> str:
    blocks = ["WEBVTT\n"]
    for cue in cues:
        timing = f"{format_timestamp(cue.start, '.')} --> {format_timestamp(cue.end, '.')}"
        blocks.append(f"{timing}\n{_cue_text(cue.text)}\n")
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

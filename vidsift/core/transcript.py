"""Transcripts as plain data: parsing subtitle files (SRT, WebVTT, ASS/SSA) into timed segments,
tidying them, and finding the lines that overlap a stretch of time.

Pure functions over strings and TranscriptSegment lists: no files are opened here (the caller
reads them), no models. Times are seconds; subtitle times are parsed exactly to the millisecond
(`00:01:02,345` -> 62.345, computed from integer milliseconds so no float drift creeps in).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from vidsift.core.types import TranscriptSegment

SUBTITLE_SUFFIXES = (".srt", ".vtt", ".ass", ".ssa")


class SubtitleParseError(ValueError):
    """A subtitle text that is not what its format says; the message names the line."""


_SRT_VTT_TIME = re.compile(
    r"^\s*(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{1,3})\s*-->\s*(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{1,3})"
)
_ASS_TIME = re.compile(r"^(\d+):(\d{2}):(\d{2})[.](\d{1,2})$")
_TAG = re.compile(r"<[^>]*>")  # WebVTT/SRT inline markup: <i>, <c.yellow>, <v Name>, <00:01.000>
_ASS_OVERRIDE = re.compile(r"\{[^}]*\}")  # ASS override blocks: {\i1}, {\pos(10,10)}


def _millis(hours: str | None, minutes: str, seconds: str, fraction: str, scale: int) -> int:
    """Clock fields -> integer milliseconds; fraction is `scale` digits wide at most (3 for
    SRT/WebVTT milliseconds, 2 for ASS centiseconds), right-padded: '5' of '.5' is 500 ms."""
    frac = int(fraction.ljust(scale, "0")) * (1000 // 10**scale)
    return ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + frac


def _clean(text: str, references: bool = False) -> str:
    """Cue text without markup tags, each line's runs of spaces as one, blank lines dropped.
    references: decode character references (&amp; &lt; &#62; ...: WebVTT's escapes) once the
    tags are gone, so an escaped tag stays text."""
    lines = [_TAG.sub("", line) for line in text.splitlines()]
    if references:
        lines = [html.unescape(line) for line in lines]
    lines = [" ".join(line.split()) for line in lines]
    return "\n".join(line for line in lines if line)


def parse_srt_or_vtt(text: str, source: str = "", vtt: bool = False) -> list[TranscriptSegment]:
    """SRT or WebVTT text -> segments in file order. A cue is a timing line `start --> end`
    (HH:MM:SS,mmm or MM:SS.mmm; WebVTT cue settings after it are ignored) and the text lines up
    to the next blank line; cue numbers, the WEBVTT header, NOTE/STYLE/REGION blocks and markup
    tags are dropped. vtt: the text is WebVTT, whose character references (&amp; &lt; &gt;
    ...) are decoded; SRT has none (&amp; there is what players show). Raises SubtitleParseError
    when a timing line is malformed or ends before it starts, or when the text holds no cue."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    segments = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if "-->" not in line:
            i += 1
            continue
        match = _SRT_VTT_TIME.match(line)
        if match is None:
            raise SubtitleParseError(f"line {i + 1}: malformed timing {line.strip()!r}")
        g = match.groups()
        start, end = _millis(*g[0:4], 3), _millis(*g[4:8], 3)
        if end < start:
            raise SubtitleParseError(f"line {i + 1}: cue ends before it starts {line.strip()!r}")
        body = []
        i += 1
        while i < len(lines) and lines[i].strip():
            body.append(lines[i])
            i += 1
        cue = _clean("\n".join(body), references=vtt)
        if cue:
            segments.append(TranscriptSegment(start / 1000, end / 1000, cue, source))
    if not segments and "-->" not in text:
        raise SubtitleParseError("no subtitle cues found")
    return segments


def parse_ass(text: str, source: str = "") -> list[TranscriptSegment]:
    """ASS/SSA text -> its Dialogue lines as segments, in file order. The [Events] Format line
    says where Start, End and Text are; override blocks ({\\i1}) are dropped and \\N, \\n are line
    breaks. Raises SubtitleParseError on a malformed time or when there is no [Events] Format."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    fields: list[str] | None = None
    segments = []
    for number, line in enumerate(text.split("\n"), start=1):
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if not sep:
            continue
        if key == "format" and fields is None and "text" in value.lower():
            fields = [f.strip().lower() for f in value.split(",")]
        elif key == "dialogue":
            if fields is None:
                raise SubtitleParseError(f"line {number}: Dialogue before the [Events] Format line")
            parts = value.strip().split(",", len(fields) - 1)
            if len(parts) != len(fields):
                raise SubtitleParseError(f"line {number}: Dialogue has {len(parts)} fields, "
                                         f"Format names {len(fields)}")
            row = dict(zip(fields, parts))
            times = []
            for name in ("start", "end"):
                match = _ASS_TIME.match(row.get(name, "").strip())
                if match is None:
                    raise SubtitleParseError(f"line {number}: malformed {name} time {row.get(name)!r}")
                times.append(_millis(*match.groups(), 2))
            if times[1] < times[0]:
                raise SubtitleParseError(f"line {number}: Dialogue ends before it starts")
            cue = _clean(ass_dialogue_text(row["text"]))
            if cue:
                segments.append(TranscriptSegment(times[0] / 1000, times[1] / 1000, cue, source))
    if fields is None:
        raise SubtitleParseError("no [Events] Format line: not an ASS/SSA file")
    return segments


def ass_dialogue_text(text: str) -> str:
    """An ASS Dialogue's Text field -> plain text: override blocks dropped, \\N/\\n as newlines,
    \\h as a space."""
    text = _ASS_OVERRIDE.sub("", text)
    return text.replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " ")


def parse_subtitles(text: str, suffix: str, source: str = "") -> list[TranscriptSegment]:
    """A subtitle file's text, by its suffix (.srt, .vtt, .ass, .ssa) -> segments sorted by time."""
    suffix = suffix.lower()
    if suffix in (".srt", ".vtt"):
        segments = parse_srt_or_vtt(text, source, vtt=suffix == ".vtt")
    elif suffix in (".ass", ".ssa"):
        segments = parse_ass(text, source)
    else:
        raise SubtitleParseError(f"unknown subtitle format {suffix!r} (choose one of: "
                                 f"{' | '.join(SUBTITLE_SUFFIXES)})")
    return sort_segments(segments)


def sort_segments(segments: Sequence[TranscriptSegment]) -> list[TranscriptSegment]:
    """Segments by (start, end), exact duplicates (same times and text) dropped: a cue repeated by
    a muxer that split it across packets counts once."""
    seen = set()
    out = []
    for seg in sorted(segments, key=lambda s: (s.start, s.end)):
        ident = (seg.start, seg.end, seg.text)
        if ident not in seen:
            seen.add(ident)
            out.append(seg)
    return out


def group_words(
    words: Sequence[tuple[float, float, str]], max_gap_s: float = 0.5, max_len_s: float = 10.0,
    source: str = "",
) -> list[TranscriptSegment]:
    """Recognised words (start, end, word) in seconds, in time order -> segments: a new segment
    starts after a pause longer than max_gap_s or when one would grow past max_len_s."""
    segments: list[TranscriptSegment] = []
    run: list[tuple[float, float, str]] = []

    def close() -> None:
        if run:
            segments.append(TranscriptSegment(run[0][0], run[-1][1], " ".join(w for _, _, w in run), source))
            run.clear()

    for start, end, word in words:
        if run and (start - run[-1][1] > max_gap_s or end - run[0][0] > max_len_s):
            close()
        run.append((start, end, word))
    close()
    return segments


def overlapping(segments: Sequence[TranscriptSegment], start: float, end: float) -> list[TranscriptSegment]:
    """The segments sharing some time with [start, end) (a zero-length segment at t counts when
    start <= t < end), in their order."""
    return [s for s in segments if s.start < end and (s.end > start or s.start == s.end >= start)]

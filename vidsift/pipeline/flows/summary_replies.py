"""What summarize asks the VLM and how it reads the replies back, never failing on one.

Map: a chapter's question (its place and times, the clip captions when they stand in for its
frames) asks for {"title", "summary"} as JSON (chapter_schema). Reduce: the chapters' titles and
summaries as text ask for {"summary", "highlights": [{start, end, title, why}]} (reduce_schema).
Both schemas go with the request (VLMRequest.schema): the in-process backends decode constrained
to them, the openai backend sends them as response_format; they are bounded to the request's
token cap, so a constrained reply always closes.

A reply is read as the JSON object it holds (the whole text, a ```json fence, or the first
object inside prose), else as "Title: ... / Summary: ..." lines, else its first line is the
title and the rest the summary: a model that ignores the format still gives a title. Each
reading says which way it was read ("json" | "text" | "empty").
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

from vidsift.core.timeline import hms

# Characters of JSON around the values: {"title": "", "summary": ""} and {"summary": "",
# "highlights": []}, one highlight {"start": , "end": , "title": "", "why": ""}, ", " between.
_CHAPTER_FRAME, _REDUCE_FRAME, _HIGHLIGHT_FRAME = 32, 36, 48
_SHORTEST = 8  # characters a value needs to say anything: less room asks for free text
TITLE_CHARS = 80  # a title read from prose is cut at a word near this length


def chapter_schema(cap: int, tokens_per_char: float = 1.0) -> dict | None:
    """The map step's JSON Schema {title, summary}, its strings bounded so that the whole JSON
    fits `cap` new tokens when a string's character costs at most tokens_per_char tokens
    (constrained decoding then always closes it): the title a quarter of the room (at most
    TITLE_CHARS), the summary the rest; None when the cap leaves no room (the reply is then
    read as free text)."""
    room = int((cap - _CHAPTER_FRAME) / tokens_per_char)
    if room < 2 * _SHORTEST:
        return None
    title = min(TITLE_CHARS, room // 4)
    return {"type": "object", "properties": {
        "title": {"type": "string", "maxLength": title},
        "summary": {"type": "string", "maxLength": room - title}},
        "required": ["title", "summary"], "additionalProperties": False}


def reduce_schema(cap: int, highlights: int, start: float, end: float,
                  tokens_per_char: float = 1.0) -> dict | None:
    """The reduce step's JSON Schema {summary, highlights: [{start, end, title, why}]}: at most
    `highlights` highlights, their times whole seconds within [start, end], every string
    bounded so that the JSON fits `cap` new tokens at tokens_per_char tokens a string
    character (the summary half the room, each highlight's title and why a share of the rest);
    fewer highlights when the cap holds fewer, None when it holds no summary."""
    low, high = math.floor(start), math.ceil(end)
    item = _HIGHLIGHT_FRAME + 2 * len(str(high))
    count, room = highlights, 0
    while count >= 0:
        room = int((cap - _REDUCE_FRAME - count * item) / tokens_per_char)
        if room >= 2 * _SHORTEST * (1 + count):
            break
        count -= 1
    if count < 0:
        return None
    share = room // 2 // max(count, 1) // 2  # a highlight's title, and its why
    time = {"type": "integer", "minimum": low, "maximum": high}
    return {"type": "object", "properties": {
        "summary": {"type": "string", "maxLength": room - 2 * share * count},
        "highlights": {"type": "array", "maxItems": count, "items": {
            "type": "object",
            "properties": {"start": time, "end": time,
                           "title": {"type": "string", "maxLength": share},
                           "why": {"type": "string", "maxLength": share}},
            "required": ["start", "end", "title", "why"], "additionalProperties": False}}},
        "required": ["summary", "highlights"], "additionalProperties": False}


def chapter_question(number: int, count: int, start: float, end: float,
                     captions: Sequence[tuple[float, float, str]] = ()) -> str:
    """The map step's question for chapter `number` (1-based) of `count`, [start, end] seconds;
    captions: (start, end, text) clip captions shown instead of frames."""
    lines = [f"This is chapter {number} of {count} of a video, from {start:.1f}s to {end:.1f}s "
             f"({hms(start)}-{hms(end)})."]
    if captions:
        lines.append("Captions of its clips (times are seconds in the video):")
        lines += [f"{a:.1f}s-{b:.1f}s: {' '.join(text.split())}" for a, b, text in captions]
    lines.append('Reply with JSON only: {"title": "<a title of at most eight words>", '
                 '"summary": "<two or three sentences on what happens in this chapter>"}')
    return "\n".join(lines)


def reduce_question(duration: float, chapters: Sequence[dict], highlights: int,
                    max_highlight_s: float) -> str:
    """The reduce step's question over the chapters' {start, end, title, summary}."""
    lines = [f"A video of {duration:.0f} seconds ({hms(duration)}) was cut into "
             f"{len(chapters)} chapters. Each chapter's time span in seconds, title and summary:"]
    for number, chapter in enumerate(chapters, start=1):
        lines.append(f"{number}. {chapter['start']:.1f}s-{chapter['end']:.1f}s "
                     f"{_flat(chapter.get('title') or '')}: {_flat(chapter.get('summary') or '')}")
    lines.append(f"Write the whole video's summary in three to five sentences and pick up to "
                 f"{highlights} highlights: the moments most worth watching, each inside one "
                 f"chapter, its start and end in seconds, at most {max_highlight_s:.0f} s long, "
                 "with a short title and why it stands out.")
    lines.append('Reply with JSON only: {"summary": "<the summary>", "highlights": [{"start": '
                 '<seconds>, "end": <seconds>, "title": "<title>", "why": "<why>"}]}')
    return "\n".join(lines)


def _flat(text: str) -> str:
    return " ".join(str(text).split())


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def json_object(text: str) -> dict | None:
    """The JSON object a reply holds: the whole text, a fenced block, or the first object that
    parses from a "{" inside it; None when there is none."""
    text = text or ""
    candidates = [text.strip(), *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for at in (m.start() for m in re.finditer(r"\{", text)):
        try:
            value, _ = decoder.raw_decode(text, at)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _shorten(text: str, limit: int = TITLE_CHARS) -> str:
    text = _flat(text).strip(" \"'*#:")
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return (cut or text[:limit]) + "…"


_LABELLED = re.compile(r"^\W*(title|summary)\W*[:\-]\s*(.*)$", re.IGNORECASE)


def read_chapter(text: str) -> tuple[str, str, str]:
    """A map reply -> (title, summary, how it was read: "json" | "text" | "empty")."""
    found = json_object(text)
    if found is not None:
        title, summary = _shorten(str(found.get("title") or "")), _flat(found.get("summary") or "")
        return title, summary, "json" if title or summary else "empty"
    labelled: dict[str, list[str]] = {}
    rest: list[str] = []
    current = None
    for line in (text or "").splitlines():
        match = _LABELLED.match(line)
        if match:
            current = match.group(1).lower()
            labelled.setdefault(current, []).append(match.group(2))
        elif line.strip():
            (labelled[current] if current else rest).append(line)
    if labelled:
        title = _shorten(" ".join(labelled.get("title", [])) or (rest[0] if rest else ""))
        return title, _flat(" ".join(labelled.get("summary", rest[1:] if "title" not in labelled
                                                  else rest))), "text"
    if not rest:
        return "", "", "empty"
    title = _shorten(rest[0])
    return title, _flat(" ".join(rest[1:]) or rest[0]), "text"


def _seconds(value) -> float:
    """A reply's time: a number, or a string of seconds / M:SS / H:MM:SS; nan otherwise."""
    if isinstance(value, bool):
        return math.nan
    if isinstance(value, (int, float)):
        return float(value)
    from vidsift.pipeline.flows.export import ExportError, parse_time

    try:
        return parse_time(str(value).strip().removesuffix("s"))
    except ExportError:
        return math.nan


def read_reduce(text: str, start: float, end: float, limit: int,
                max_s: float) -> tuple[str, list[dict], str]:
    """A reduce reply -> (the video's summary, its highlights, how it was read). Highlights
    are kept when their times are numbers inside [start, end] seconds (clipped to it), end after
    start, cut to max_s; at most `limit`, in time order, overlapping ones dropped."""
    found = json_object(text)
    if found is None:
        summary = _flat(text or "")
        return summary, [], "text" if summary else "empty"
    summary = _flat(found.get("summary") or "")
    picked: list[dict] = []
    raw = found.get("highlights")
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        lo, hi = _seconds(item.get("start")), _seconds(item.get("end"))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            continue
        lo, hi = max(lo, start), min(hi, end, max(lo, start) + max_s)
        if not hi > lo or any(lo < h["end"] and hi > h["start"] for h in picked):
            continue
        picked.append({"start": round(lo, 3), "end": round(hi, 3),
                       "title": _shorten(str(item.get("title") or "")) or
                       f"Highlight {len(picked) + 1}",
                       "why": _flat(item.get("why") or "")})
        if len(picked) == limit:
            break
    return summary, sorted(picked, key=lambda h: h["start"]), "json"

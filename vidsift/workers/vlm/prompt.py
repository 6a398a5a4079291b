"""The one layout of an evidence request, shared by every VLM backend, and the parser of the
citations in its answer.

A request is laid out as numbered evidence segments in time order, each a text label then its
visual (an image, or a clip), then an instruction to cite evidence by number, then the question:

    [1] <t=1.0s>          <image>
    [2] <t=2.0s-3.0s>     <clip>
    [3] <t=7.5s>          <image>
    Cite the evidence you use by its number in square brackets, e.g. [2] or [1, 3].
    <question>

When the segments come from more than one video, each label names its video's file name:
"[2] lecture.mp4 <t=2.0s-3.0s>". A follow-up question carries the conversation's earlier turns
as text before the evidence (history_text): each earlier question with the times of the
evidence it was shown, and its answer with the [n] citations written out as those times, so the
old numbers never collide with the new ones. What is said during the evidence (a transcript,
fitted to budget.speech_tokens) follows the last visual, before the instruction
(transcript_text). Backends turn the parts into their own message format (a chat
template's image/video placeholders, or OpenAI content parts); none lays out text of its own, so
the numbers the model cites are the numbers parse_citations() reads back.

Pure: no model, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from vidsift.core.types import HistoryTurn, PlannedSegment, TokenSet, TranscriptSegment

CITE_INSTRUCTION = (
    "Cite the evidence you use by its number in square brackets, e.g. [2] or [1, 3]."
)


def time_tag(segment: PlannedSegment) -> str:
    """Absolute time of a segment as the model reads it: <t=12.5s-16.5s> or <t=3.0s>."""
    if len(segment.frames or segment.timestamps) >= 2:  # a clip (planned, or decoded)
        return f"<t={segment.start:.1f}s-{segment.end:.1f}s>"
    return f"<t={segment.start:.1f}s>"


def segment_videos(token_set: TokenSet) -> list[str]:
    """The video each segment of `token_set` comes from, in segment order.

    The one place a segment's video is looked up: a segment's own video (set when a token set
    is planned over several videos), else token_set.video; labels and citations follow.
    """
    return [segment.video or token_set.video for segment in token_set.segments]


@dataclass(frozen=True, slots=True)
class Visual:
    """The visual of one segment in the layout: index into token_set.segments."""

    segment: int


Part = str | Visual  # a text part, or where a segment's visual goes


def segment_labels(
    token_set: TokenSet, time_format: Callable[[PlannedSegment], str] = time_tag
) -> list[str]:
    """Per segment: "[n] <t=...>", with the video's file name before the time when the token set
    spans several videos. time_format: the backend's time tag (the default suits Qwen2.5-VL)."""
    videos = segment_videos(token_set)
    several = len(set(videos)) > 1
    labels = []
    for number, (segment, video) in enumerate(zip(token_set.segments, videos), start=1):
        name = f"{PurePath(video).name} " if several else ""
        labels.append(f"[{number}] {name}{time_format(segment)}")
    return labels


HISTORY_HEADER = "Earlier in this conversation (times are seconds in the video):"
NEW_EVIDENCE = "Evidence for the new question:"


def _span(start: float, end: float) -> str:
    return f"{start:.1f}s" if start == end else f"{start:.1f}s-{end:.1f}s"


def _evidence_times(evidence: tuple[tuple[str, float, float], ...]) -> str:
    """"1.0s, 12.5s-16.5s"; grouped as "a.mp4 1.0s; b.mp4 3.0s" when several videos."""
    names = list(dict.fromkeys(PurePath(video).name for video, _, _ in evidence))
    if len(names) <= 1:
        return ", ".join(_span(start, end) for _, start, end in evidence)
    return "; ".join(
        name + " " + ", ".join(_span(s, e) for v, s, e in evidence if PurePath(v).name == name)
        for name in names
    )


def _answer_with_times(turn: HistoryTurn) -> str:
    """The turn's answer with each citation bracket ([2], [1-3]) replaced by the cited times in
    parentheses; brackets that are not citations stay."""
    several = len({video for video, _, _ in turn.evidence}) > 1

    def spell(match: re.Match) -> str:
        cited = [turn.evidence[n - 1] for low, high in _bracket_ranges(match.group(1))
                 for n in range(max(low, 1), min(high, len(turn.evidence)) + 1)]
        if not cited:
            return match.group(0)
        return "(" + ", ".join((f"{PurePath(v).name} " if several else "") + _span(s, e)
                               for v, s, e in cited) + ")"

    return _BRACKET.sub(spell, turn.answer)


def history_text(turns: Sequence[HistoryTurn]) -> str:
    """Earlier turns as the text placed before the evidence (ends with a newline), "" for none:

        Earlier in this conversation (times are seconds in the video):
        Q1 (evidence 3.0s, 12.5s-16.5s): where is the chart?
        A1: On the slide (12.5s-16.5s).
        Evidence for the new question:
    """
    if not turns:
        return ""
    lines = [HISTORY_HEADER]
    for number, turn in enumerate(turns, start=1):
        shown = f" (evidence {_evidence_times(turn.evidence)})" if turn.evidence else ""
        lines.append(f"Q{number}{shown}: {turn.question}")
        lines.append(f"A{number}: {_answer_with_times(turn)}")
    lines.append(NEW_EVIDENCE)
    return "\n".join(lines) + "\n"


def fit_text(
    choices: Sequence[tuple], render: Callable[[Sequence], str], allowance: int,
    count: Callable[[str], int],
) -> tuple[tuple, int]:
    """The first of `choices` (most kept first, each a tuple of items) whose render() counts at
    most `allowance` text tokens, and that count. count: text -> tokens (the VLM's tokenizer, or
    an estimate). None fits: ((), 0). The one trimming rule of the prompt's text allowances."""
    for kept in choices:
        tokens = count(render(kept))
        if tokens <= allowance:
            return kept, tokens
    return (), 0


def fit_history(
    turns: Sequence[HistoryTurn], allowance: int, count: Callable[[str], int]
) -> tuple[tuple[HistoryTurn, ...], int]:
    """The newest turns whose history_text() counts at most `allowance` text tokens, oldest
    dropped first, and that count (fit_text)."""
    return fit_text([tuple(turns[first:]) for first in range(len(turns))], history_text,
                    allowance, count)


TRANSCRIPT_HEADER = "Said during this evidence (times are seconds in the video):"


def transcript_text(lines: Sequence[TranscriptSegment]) -> str:
    """Transcript lines as the text placed after the evidence (ends with a newline), "" for none:

        Said during this evidence (times are seconds in the video):
        12.0s-15.5s: The vault code is seven four two nine.
    """
    if not lines:
        return ""
    return "\n".join([TRANSCRIPT_HEADER] + [f"{_span(line.start, line.end)}: "
                                            + " ".join(line.text.split()) for line in lines]) + "\n"


def fit_transcript(
    lines: Sequence[TranscriptSegment], scores: Sequence[float], allowance: int,
    count: Callable[[str], int],
) -> tuple[tuple[TranscriptSegment, ...], int]:
    """The best-scoring lines (scores: each line's similarity to the question) whose
    transcript_text() counts at most `allowance` text tokens, kept in time order, lowest scores
    dropped first; and that count (fit_text)."""
    ranked = sorted(range(len(lines)), key=lambda i: (-scores[i], i))
    choices = [tuple(lines[i] for i in sorted(ranked[:n])) for n in range(len(lines), 0, -1)]
    return fit_text(choices, transcript_text, allowance, count)


def evidence_parts(
    token_set: TokenSet,
    question: str,
    time_format: Callable[[PlannedSegment], str] = time_tag,
    history: Sequence[HistoryTurn] = (),
    transcript: Sequence[TranscriptSegment] = (),
) -> list[Part]:
    """The request in order: the conversation's earlier turns (history_text, when any) then per
    segment its label (text) and its Visual; then what is said during them (transcript_text,
    when any), the citation instruction and the question as text parts. No segments: the
    history, the transcript and the question alone."""
    parts: list[Part] = [history_text(history)] if history else []
    for index, label in enumerate(segment_labels(token_set, time_format)):
        parts.append(label if index == 0 else "\n" + label)
        parts.append(Visual(index))
    if transcript:
        parts.append(("\n" if token_set.segments else "") + transcript_text(transcript))
    if token_set.segments:
        parts.append(("" if transcript else "\n") + CITE_INSTRUCTION + "\n")
    parts.append(question)
    return parts


# A bracketed group whose content is only segment numbers: [2], [1, 3], [1-3], [segments 2 and 4].
_BRACKET = re.compile(r"\[([^\[\]]{1,200})\]")
_RANGE_DASH = re.compile(r"\s*(?:[-\u2010-\u2014]|\bto\b)\s*")
_SEPARATORS = re.compile(r"(?:[,;&/]|\band\b|\s)+")
_ITEM = re.compile(r"#?(\d{1,6})(?:-#?(\d{1,6}))?")
_PREFIX = re.compile(r"^\s*(?:segments?|segs?\.?|evidence|clips?|images?)\s*", re.IGNORECASE)


def _bracket_ranges(content: str) -> list[tuple[int, int]]:
    """The (first, last) number ranges a bracket's content cites; [] when it is not a citation
    ([t=3s], [2.5], [see above])."""
    text = _RANGE_DASH.sub("-", _PREFIX.sub("", content.strip()).lower())
    items = [item for item in _SEPARATORS.split(text) if item]
    ranges: list[tuple[int, int]] = []
    for item in items:
        match = _ITEM.fullmatch(item)
        if match is None:
            return []
        low = int(match.group(1))
        ranges.append((low, int(match.group(2)) if match.group(2) else low))
    return ranges


def parse_citations(answer_text: str, token_set: TokenSet) -> list[dict]:
    """The evidence an answer cites: [{segment, start, end, video}] in order of first mention,
    each segment once. segment is the number the prompt showed (1-based: segment n is
    token_set.segments[n - 1]); start/end are its seconds.

    Reads bracketed numbers as laid out by evidence_parts: [1], [2,3], [1-3] (ranges inclusive,
    also [1 to 3] and en dashes), [segment 2]. Numbers outside 1..len(segments) are ignored, and
    brackets holding anything else ([t=3s], [2.5], [a]) are not citations.
    """
    count = len(token_set.segments)
    videos = segment_videos(token_set)
    seen: list[int] = []
    for match in _BRACKET.finditer(answer_text or ""):
        for low, high in _bracket_ranges(match.group(1)):
            for number in range(max(low, 1), min(high, count) + 1):
                if number not in seen:
                    seen.append(number)
    return [
        {
            "segment": number,
            "start": token_set.segments[number - 1].start,
            "end": token_set.segments[number - 1].end,
            "video": videos[number - 1],
        }
        for number in seen
    ]

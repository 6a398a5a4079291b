"""selection.rewrite: a question in other words, turned into the literal words likely on screen
or said, for the text embedder to match sentence against sentence ("What password is
displayed?" -> "PASSWORD", "SECRET WORD", "CODE"). A small sentence embedder relates a question
to a sign that answers it in other words weakly (plan.matching's doc); a language model knows
what such a sign says. Pure string work: the flow asks the configured model
(pipeline.flows.rewrite) and caches its answer per question.
"""

from __future__ import annotations

import re

# Raised when the prompt changes: cached phrasings of an older prompt are not reused.
PROMPT_VERSION = 1
MAX_PHRASES = 5
MAX_PHRASE_CHARS = 80
# enough for MAX_PHRASES short lines
MAX_NEW_TOKENS = 64

_PROMPT = (
    "A video is searched for the moment that answers a question. Write up to {n} short phrases"
    " that would literally appear as text on the screen (signs, captions, titles, labels) or be"
    " said aloud at that moment, one per line, without numbering or explanation.\n"
    "Question: {question}"
)
# A list marker a model puts before a line: "1.", "2)", "-", "*", "•".
_MARKER = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*\u2022])\s*")


def rewrite_prompt(question: str) -> str:
    """The text sent to the model for one question."""
    return _PROMPT.format(n=MAX_PHRASES, question=" ".join(question.split()))


def parse_phrases(answer: str, question: str = "") -> list[str]:
    """The model's answer -> up to MAX_PHRASES distinct phrases, in its order: one a line, list
    markers and surrounding quotes dropped, a "Question:" echo or the question itself left out,
    each cut to MAX_PHRASE_CHARS. [] for an empty answer."""
    asked = " ".join(question.split()).casefold()
    found: dict[str, None] = {}
    for line in answer.splitlines():
        phrase = _MARKER.sub("", line).strip().strip("\"'\u201c\u201d`").strip()
        phrase = " ".join(phrase.split())[:MAX_PHRASE_CHARS].strip()
        key = phrase.casefold()
        if not phrase or key == asked or key.startswith("question:"):
            continue
        found.setdefault(phrase, None)
        if len(found) == MAX_PHRASES:
            break
    return list(found)

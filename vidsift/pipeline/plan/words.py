"""On-screen text as words: OCR at the coarse size drops the spaces between words
("NEXTSTATION:BERLIN", "SECRETWORD:ORCHID", "PLATFORM9"), and a text embedder reads such a
run as one unknown token, so a question in other words ("Which city is the train going to?")
misses it sentence against sentence. readable_text puts the spaces back: between letters and
digits, after a colon-like mark, and inside a run of letters that no English word spells, where
every piece of symspellpy's most likely segmentation (by the word frequencies it ships) is
itself a word (a one- or two-letter piece only a common one). Pure string work; the frequency dictionary loads once per process (~1 s, only
when a glued run is met)."""

from __future__ import annotations

import functools
import re

# A run of letters (an apostrophe inside it kept: "TODAY'SSPECIAL"); shorter runs are left as
# they are: a short unknown run is more often a name or an OCR slip than glued words.
_LETTERS = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")
MIN_GLUED_LETTERS = 6
_LETTER_DIGIT = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z]{2})")
_AFTER_MARK = re.compile(r"(?<=[:;,!?%])(?=[A-Za-z])")  # not "3:45"
# A piece of one or two letters counts as a word only when it is one of the ~90 commonest
# ("to", "at", "by", "a"): rarer short words ("re", "el") are how a misread long word splits
# ("TEMPERATORE" -> "TEMPERA TO RE").
SHORT_WORD_MIN_COUNT = 5e8


@functools.lru_cache(maxsize=1)
def _segmenter():
    import importlib.resources

    from symspellpy import SymSpell

    speller = SymSpell(max_dictionary_edit_distance=0, prefix_length=7)
    speller.load_dictionary(
        str(importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"), 0, 1)
    return speller


def _is_word(piece: str, words) -> bool:
    stem = piece.split("'")[0]  # "today's": the dictionary holds "today"
    if len(stem) <= 2:
        return words.get(stem, 0) >= SHORT_WORD_MIN_COUNT
    return stem in words


def split_run(run: str) -> str:
    """One run of letters with the spaces put back where it is glued words ("SECRETWORD" ->
    "SECRET WORD"), in its own letters and case; the run itself when it is a word, shorter than
    MIN_GLUED_LETTERS, or its best segmentation has a piece that is no word ("BigByrk")."""
    if len(run) < MIN_GLUED_LETTERS:
        return run
    speller = _segmenter()
    if run.lower() in speller.words:
        return run
    pieces = speller.word_segmentation(run.lower(), max_edit_distance=0).segmented_string.split()
    if len(pieces) < 2 or "".join(pieces) != run.lower() or not all(
            _is_word(p, speller.words) for p in pieces):
        return run
    out, at = [], 0
    for piece in pieces:
        out.append(run[at:at + len(piece)])
        at += len(piece)
    return " ".join(out)


def readable_text(text: str) -> str:
    """An OCR text with the spaces between its words put back (module doc): "NEXTSTATION:BERLIN"
    -> "NEXT STATION: BERLIN", "PLATFORM9" -> "PLATFORM 9"; text already spaced is unchanged
    but for a space after ':' ';' ',' '!' '?' '%' glued to a letter."""
    spaced = _AFTER_MARK.sub(" ", _LETTER_DIGIT.sub(" ", text))
    return _LETTERS.sub(lambda m: split_run(m.group(0)), spaced)

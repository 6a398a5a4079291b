"""On-screen text as words: OCR at the coarse size drops the spaces between words
("NEXTSTATION:BERLIN", "SECRETWORD:ORCHID", "PLATFORM9"), and a text embedder reads such a
run as one unknown token, so a question in other words ("Which city is the train going to?")
misses it sentence against sentence. readable_text puts the spaces back: between letters and
digits, after a colon-like mark, and inside a run of letters that no English word spells, where
every piece of symspellpy's most likely segmentation (by the word frequencies it ships) is
itself a word (a one- or two-letter piece only a common one). A run that is then no word, of
MIN_CORRECTED_LETTERS or more, is read as the commonest word one edit away, if any (OCR's usual
slips: "SOORE" -> "SCORE", "PLATFORI" -> "PLATFORM"; correct_word). Pure string work; the
frequency dictionary loads once per process (~1 s, only when a glued or unknown run is met)."""

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
# An unknown run shorter than this is left as read: one edit turns most short runs into some word.
MIN_CORRECTED_LETTERS = 5
# A correction must be a word at least this common (the dictionary's counts): rarer ones are more
# often another name than what OCR misread.
CORRECTION_MIN_COUNT = 1e5
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
# Letters OCR takes for one another at a small size (round, upright, two-legged, ...): a misread
# swaps within a group; a swap across groups ("SACHA" -> "SACHS") is more often another word.
_LOOK_ALIKE = ("ocdqgue", "iltjf", "mnh", "vyu", "bhk", "pr", "sz")
_LOOKS_LIKE = {c: "".join(sorted(set("".join(g for g in _LOOK_ALIKE if c in g)) - {c}))
               for c in _ALPHABET}


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


def _one_misread(word: str) -> set[str]:
    """Every string one OCR slip from word (a-z): a letter dropped, added or swapped with its
    neighbour, or taken for a look-alike (_LOOK_ALIKE)."""
    halves = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return ({a + b[1:] for a, b in halves if b}
            | {a + b[1] + b[0] + b[2:] for a, b in halves if len(b) > 1}
            | {a + c + b[1:] for a, b in halves if b for c in _LOOKS_LIKE.get(b[0], "")}
            | {a + c + b for a, b in halves for c in _ALPHABET})


def correct_word(run: str) -> str:
    """A run of letters that is no word, read as the commonest word one OCR slip away
    (_one_misread: "SOORE" -> "SCORE", "TEMPERATORE" -> "TEMPERATURE", "PLATFORMG" ->
    "PLATFORM") in the run's case (upper, title or lower); the run itself when it is a word,
    shorter than MIN_CORRECTED_LETTERS, holds an apostrophe, or no word of at least
    CORRECTION_MIN_COUNT is one slip away. Ties go to the alphabetically first."""
    low = run.lower()
    if len(run) < MIN_CORRECTED_LETTERS or not low.isalpha() or not low.isascii():
        return run
    words = _segmenter().words
    if low in words:
        return run
    found = [(-words[w], w) for w in _one_misread(low) if words.get(w, 0) >= CORRECTION_MIN_COUNT]
    if not found:
        return run
    best = min(found)[1]
    if run.isupper():
        return best.upper()
    return best.capitalize() if run[0].isupper() and run[1:].islower() else best


def _readable_run(run: str) -> str:
    """split_run's words when each piece has two letters or more, else the corrected word if
    there is one ("PLATFORI" is "PLATFORM" misread more likely than "PLAT FOR I"), else the
    split or the run."""
    split = split_run(run)
    if split != run and min(len(piece) for piece in split.split()) >= 2:
        return split
    corrected = correct_word(run)
    return corrected if corrected != run else split


def readable_text(text: str) -> str:
    """An OCR text with the spaces between its words put back and a misread word corrected
    (module doc): "NEXTSTATION:BERLIN" -> "NEXT STATION: BERLIN", "PLATFORM9" -> "PLATFORM 9",
    "SOORE" -> "SCORE"; text already spaced and spelt is unchanged but for a space after ':' ';'
    ',' '!' '?' '%' glued to a letter."""
    spaced = _AFTER_MARK.sub(" ", _LETTER_DIGIT.sub(" ", text))
    return _LETTERS.sub(lambda m: _readable_run(m.group(0)), spaced)

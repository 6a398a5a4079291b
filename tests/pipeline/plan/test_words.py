"""OCR at the coarse size drops the spaces between words; plan.words.readable_text puts them
back so a text embedder reads words, not one unknown run (issue 25 item 3)."""

import pytest

from vidsift.pipeline.plan.words import correct_word, readable_text


@pytest.mark.parametrize("read, spaced", [
    ("NEXTSTATION:BERLIN", "NEXT STATION: BERLIN"),
    ("SECRETWORD:ORCHID", "SECRET WORD: ORCHID"),
    ("TODAY'SSPECIAL:TOMATOSOUP", "TODAY'S SPECIAL: TOMATO SOUP"),
    ("GRANDHOTELASTORIA", "GRAND HOTEL ASTORIA"),
    ("PLATFORM9", "PLATFORM 9"),
    ("CAUTION:WETFLOOR", "CAUTION: WET FLOOR"),
])
def test_glued_words_are_spaced_in_their_own_case(read, spaced):
    assert readable_text(read) == spaced


@pytest.mark.parametrize("text", [
    "NEXT STATION: BERLIN", "Meet at 3:45 by the gate", "STOP", "BigByrk",
    "Sacha Goedegebure",  # names: "Sachs" is one swap away, but a and s do not look alike
    "PLATFORM 9", "ORCHID",
])
def test_spaced_text_words_and_names_are_left_as_they_are(text):
    assert readable_text(text) == text


@pytest.mark.parametrize("read, meant", [
    ("SOORE 3-1", "SCORE 3-1"),  # o for c: look-alikes (STORE is commoner, but t is not round)
    ("TEMPERATORE31C", "TEMPERATURE 31C"),  # corrected whole, not split "TEMPERA TO RE"
    ("PLATFORMG", "PLATFORM"),  # a letter too many
    ("Caution: wet flcor", "Caution: wet floor"),
])
def test_a_word_ocr_misread_by_one_slip_is_read_as_the_word(read, meant):
    assert readable_text(read) == meant


def test_only_long_unknown_runs_are_corrected():
    assert correct_word("SOORE") == "SCORE"
    assert correct_word("Soore") == "Score"
    assert correct_word("OPNE") == "OPNE"  # under MIN_CORRECTED_LETTERS
    assert correct_word("score") == "score"

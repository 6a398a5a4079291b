"""OCR at the coarse size drops the spaces between words; plan.words.readable_text puts them
back so a text embedder reads words, not one unknown run (issue 25 item 3)."""

import pytest

from vidsift.pipeline.plan.words import readable_text


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
    "TEMPERATORE",  # a misread word stays whole, not "TEMPERA TO RE"
])
def test_spaced_text_words_and_misreads_are_left_as_they_are(text):
    assert readable_text(text) == text

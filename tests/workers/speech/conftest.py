"""Speech test videos, made once per run (espeak-ng speech, ffmpeg muxing)."""

from __future__ import annotations

import pytest

from tests.speech_videos import Line, espeak_available, make_speech_video

SPOKEN = [Line(1.0, "The delivery truck arrives at the north gate"),
          Line(7.0, "Meeting at nine in the library")]
CUES = [(1.25, 3.5, "The password is falcon"), (5.0, 7.125, "Second line here\nwith two lines")]


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory):
    if not espeak_available():
        pytest.fail("espeak-ng must be on PATH (make test installs it: make espeak)")
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def spoken_video(speech_dir):
    """12 s: SPOKEN said aloud at 1 s and 7 s (no subtitles); yields (path, lines with ends)."""
    path = speech_dir / "spoken.mp4"
    return path, make_speech_video(path, 12, SPOKEN)


@pytest.fixture(scope="session")
def subtitled_video(speech_dir):
    """12 s with speech and a mov_text track holding CUES."""
    path = speech_dir / "subtitled.mp4"
    make_speech_video(path, 12, SPOKEN, cues=CUES, subtitle_codec="mov_text")
    return path

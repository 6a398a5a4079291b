"""pocketsphinx, the second offline backend, on espeak-ng speech: its accuracy on synthetic speech is
low (bench/results/speech.json), so this checks what it does reliably: segments fall inside the
spoken windows (none in the silence between) and some spoken words are heard."""

from __future__ import annotations

import pytest

from vidsift.core.config import SpeechConfig
from vidsift.core.errors import ConfigError
from vidsift.workers.speech import get_asr, transcribe


def test_segments_land_in_the_spoken_windows(spoken_video):
    path, lines = spoken_video
    transcript = transcribe(str(path), SpeechConfig(mode="asr", asr_backend="pocketsphinx"))
    assert transcript.sources == ["asr pocketsphinx"] and transcript.warnings == []
    assert transcript.segments
    for seg in transcript.segments:
        assert seg.source == "asr:pocketsphinx" and seg.text and seg.start < seg.end
        assert any(line.start - 0.2 <= seg.start and seg.end <= line.end + 0.2 for line in lines), seg
    for line in lines:  # each sentence is heard as something
        assert any(line.start - 0.2 <= s.start <= line.end for s in transcript.segments), line
    spoken = {w for line in lines for w in line.text.lower().split()}
    heard = {w for s in transcript.segments for w in s.text.split()}
    assert len(spoken & heard) >= 2, heard  # "north", "library" are heard in practice


def test_window_size_does_not_move_times(spoken_video):
    path, lines = spoken_video
    short = transcribe(str(path), SpeechConfig(mode="asr", asr_backend="pocketsphinx", window_s=6))
    for seg in short.segments:
        assert any(line.start - 0.2 <= seg.start and seg.end <= line.end + 0.2 for line in lines), seg


def test_english_only():
    with pytest.raises(ConfigError, match="English only.*speech.asr_backend=whisper"):
        get_asr(SpeechConfig(asr_backend="pocketsphinx", language="de"))

"""Moonshine base from the moonshine-cpp wheel: the spoken words are heard (espeak-ng speech),
each run of speech is one segment timed by its audio, and the pause finder that makes the runs."""

from __future__ import annotations

import re
from itertools import pairwise

import numpy as np
import pytest

from vidsift.core.config import SpeechConfig
from vidsift.core.errors import ConfigError, ModelLoadError
from vidsift.workers.speech import get_asr, transcribe
from vidsift.workers.speech.audio import SAMPLE_RATE
from vidsift.workers.speech.moonshine_backend import (
    MAX_RUN_S,
    PAD_S,
    detokenize,
    read_tokenizer,
    share_words,
    speech_runs,
)


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z ]", " ", text.lower()).split()


def tone(seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.float32)


def test_runs_are_the_sounds_padded_and_short_pauses_joined():
    # 1 s sound, 0.2 s pause (joined), 0.5 s sound, 1 s pause, 0.6 s sound, then silence
    samples = np.concatenate([silence(0.5), tone(1.0), silence(0.2), tone(0.5), silence(1.0), tone(0.6), silence(1)])
    pad = int(PAD_S * SAMPLE_RATE)
    assert speech_runs(samples) == [(8000 - pad, 8000 + 27200 + pad), (51200 - pad, 60800 + pad)]


def hiss(seconds: float, dbfs: float) -> np.ndarray:
    noise = np.random.default_rng(0).standard_normal(int(seconds * SAMPLE_RATE))
    return (10 ** (dbfs / 20) * noise).astype(np.float32)


def test_runs_skip_blips_hiss_and_silence():
    click = np.concatenate([silence(1.0), tone(0.06), silence(1.94)])  # 60 ms
    assert speech_runs(hiss(3.0, -60) + click) == []
    assert speech_runs(silence(2.0)) == [] and speech_runs(np.zeros(0, np.float32)) == []
    # hiss loud enough to be heard (-44 dBFS) but 40 dB under the speech (-4 dBFS) is a pause
    speech = np.concatenate([silence(1.0), tone(1.0, level=0.9), silence(1.0)])
    assert speech_runs(hiss(3.0, -44) + speech) == [(16000 - 1600, 32000 + 1600)]


def test_a_long_run_is_cut_at_its_quietest_moment():
    # 25 s of sound with a dip to a tenth of the level at 7 s: no pause long enough to split on
    samples = np.concatenate([tone(7.0), tone(0.12, level=0.03), tone(17.88)])
    runs = speech_runs(samples)
    assert runs[0][0] == 0 and runs[-1][1] == len(samples)
    assert all(a[1] == b[0] for a, b in pairwise(runs))  # contiguous, nothing lost
    assert all(end - start <= MAX_RUN_S * SAMPLE_RATE for start, end in runs)
    assert 7.0 <= runs[0][1] / SAMPLE_RATE <= 7.12  # inside the dip


def test_hears_what_is_said_one_segment_per_sentence(spoken_video):
    path, lines = spoken_video
    transcript = transcribe(str(path), SpeechConfig(mode="asr", asr_backend="moonshine"))
    assert transcript.sources == ["asr moonshine"] and transcript.warnings == []
    assert len(transcript.segments) == len(lines)
    for seg, line in zip(transcript.segments, lines):
        assert seg.source == "asr:moonshine"
        assert line.start - PAD_S - 0.05 <= seg.start <= line.start + 0.2  # espeak-ng starts within 0.1 s
        assert line.end - 0.3 <= seg.end <= line.end + PAD_S + 0.05
        said, heard = words(line.text), set(words(seg.text))
        assert sum(w in heard for w in said) >= 0.75 * len(said), (line.text, seg.text)


def test_english_only_and_a_clear_error_without_its_package(monkeypatch):
    with pytest.raises(ConfigError, match="English only.*speech.asr_backend=whisper"):
        get_asr(SpeechConfig(asr_backend="moonshine", language="fr"))
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # as where its wheel does not install
    with pytest.raises(ConfigError, match="needs the moonshine-cpp package.*use speech.asr_backend=pocketsphinx"):
        get_asr(SpeechConfig(asr_backend="moonshine"))


def test_tokenizer_file_and_detokenize(tmp_path):
    path = tmp_path / "tokenizer.bin"
    vocab = [b"<unk>", b"<s>", b"</s>", "\u2581The".encode(), "\u2581caf".encode(), b"\xc3", b"\xa9", b"."]
    path.write_bytes(b"".join(bytes([len(v)]) + v for v in vocab))
    tokens = read_tokenizer(path)
    assert tokens == vocab
    # a character split over two byte tokens is joined; ids past the vocabulary are left out
    assert detokenize(tokens, [3, 4, 5, 6, 7, 32767]) == "The café."
    path.write_bytes(b"\x05<unk>\x09<s>")  # the last length runs past the end
    with pytest.raises(ModelLoadError, match="not a Moonshine tokenizer"):
        read_tokenizer(path)


def test_words_are_shared_to_runs_by_time_then_sentence_ends():
    assert share_words("one two three four five six", [1, 1, 1]) == ["one two", "three four", "five six"]
    # by time alone "Then" would go to the first run; the sentence's end moves it
    assert share_words("The cat sat down. Then it ran away", [1, 1]) == ["The cat sat down.", "Then it ran away"]
    assert share_words("hello", [1, 5, 1]) == ["", "hello", ""]  # short runs around may get nothing
    assert share_words("", [1, 2]) == ["", ""]

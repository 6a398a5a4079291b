"""Whisper through transformers on a tiny random-weight checkpoint (its text is noise): loading
by path, timestamp tokens to segment times, windows batched into one generate call each, the
same segments whatever the batch size, and the errors a user meets."""

from __future__ import annotations

import pytest

from tests.tiny_whisper import save_tiny_whisper
from vidsift.core.config import SpeechConfig
from vidsift.core.errors import ConfigError, ModelLoadError
from vidsift.workers.speech import get_asr, transcribe
from vidsift.workers.speech.whisper_backend import timestamped_pieces

BEGIN = 1000  # a timestamp_begin for the pure tests: id 1000 + n is n * 0.02 s


def test_timestamped_pieces():
    ids = [BEGIN + 34, 5, 6, BEGIN + 100, BEGIN + 100, 7, BEGIN + 150]
    assert timestamped_pieces(ids, BEGIN, 0.02) == [(0.68, 2.0, [5, 6]), (2.0, 3.0, [7])]
    # text before any time starts at 0; an unclosed segment ends with the window (None);
    # a pair of times with nothing between is no segment
    assert timestamped_pieces([5, BEGIN + 50, BEGIN + 60, BEGIN + 70, 8], BEGIN, 0.02) == [
        (0.0, 1.0, [5]), (1.4, None, [8])]
    assert timestamped_pieces([], BEGIN, 0.02) == []


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    import torch

    # a 32-wide model: one thread is 30x faster than torch's default pool on a shared machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield save_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-whisper")
    torch.set_num_threads(threads)


def test_batches_and_times(tiny_whisper, spoken_video, monkeypatch):
    path, _ = spoken_video
    cfg = SpeechConfig(mode="asr", asr_backend="whisper", whisper_model=str(tiny_whisper),
                       window_s=5, batch_size=2)
    asr = get_asr(cfg)
    calls = []
    generate = asr.model.generate

    def counting(features, **kwargs):
        calls.append(features.shape[0])
        return generate(features, **kwargs)

    monkeypatch.setattr(asr.model, "generate", counting)
    batched = transcribe(str(path), cfg, asr=asr)
    # windows 0-5 s and 5-10 s hold speech; 10-12 s is silent and never reaches the model
    assert calls == [2]
    assert batched.sources == ["asr whisper"] and batched.warnings == []
    assert batched.segments, "a random model still emits timed text"
    for seg in batched.segments:
        assert seg.source == "asr:whisper" and seg.text
        window = 0.0 if seg.start < 5.0 else 5.0  # inside the window it was heard in
        assert window <= seg.start <= seg.end <= window + 5.0
    starts = [s.start for s in batched.segments]
    assert starts == sorted(starts)

    calls.clear()
    asr.cfg = cfg.model_copy(update={"batch_size": 1})
    one_by_one = transcribe(str(path), cfg, asr=asr)
    assert calls == [1, 1]
    assert one_by_one.segments == batched.segments


def test_whisper_needs_a_model(tmp_path):
    with pytest.raises(ConfigError, match="speech.whisper_model"):
        get_asr(SpeechConfig(asr_backend="whisper"))
    with pytest.raises(ModelLoadError, match=f"{tmp_path / 'nothing'}: cannot load Whisper"):
        get_asr(SpeechConfig(asr_backend="whisper", whisper_model=str(tmp_path / "nothing")))

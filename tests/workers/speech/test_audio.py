"""The audio track in bounded 16 kHz mono windows; bad audio is counted, not fatal."""

from __future__ import annotations

import numpy as np
import pytest

from tests.speech_videos import corrupt_audio_packets, make_speech_video
from vidsift.workers.speech.audio import SAMPLE_RATE, AudioReader, NoAudioError


def test_windows_tile_the_track(spoken_video):
    path, lines = spoken_video
    reader = AudioReader(str(path), window_s=5)
    windows = list(reader.windows())
    assert [len(w.samples) for w in windows[:-1]] == [5 * SAMPLE_RATE] * (len(windows) - 1)
    assert all(w.samples.dtype == np.float32 and w.samples.ndim == 1 for w in windows)
    assert windows[0].start == 0.0
    for before, after in zip(windows, windows[1:]):
        assert after.start == pytest.approx(before.end)
    assert windows[-1].end == pytest.approx(12.0, abs=0.1)
    assert reader.duration == pytest.approx(12.0, abs=0.1)
    assert reader.warnings == []
    # speech where it was spoken, silence between (espeak's sentences at 1 s and 7 s)
    first = np.concatenate([w.samples for w in windows])
    level = lambda a, b: np.sqrt(np.mean(first[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)] ** 2))
    assert level(lines[0].start + 0.2, lines[0].end - 0.2) > 0.02
    assert level(lines[0].end + 0.3, lines[1].start - 0.3) < 1e-3


def test_no_audio_track_is_named(speech_dir):
    path = speech_dir / "mute.mp4"
    make_speech_video(path, 3, audio="none")
    with pytest.raises(NoAudioError, match=f"{path}: no audio track"):
        AudioReader(str(path))


def test_corrupt_packets_are_skipped_and_counted(speech_dir, spoken_video):
    path = speech_dir / "corrupt.mp4"
    path.write_bytes(spoken_video[0].read_bytes())
    damaged = corrupt_audio_packets(path, every=2)
    reader = AudioReader(str(path), window_s=30)
    windows = list(reader.windows())
    assert windows, "the undamaged packets still decode"
    assert reader.warnings == [f"{path}: {damaged} audio packet(s) could not be decoded and were skipped"]

"""The audio track in bounded 16 kHz mono windows; bad audio is counted, not fatal."""

from __future__ import annotations

import numpy as np
import pytest

from tests.speech_videos import corrupt_audio_packets, make_speech_video
from vidsift.workers.speech.audio import SAMPLE_RATE, AudioReader, NoAudioError, quiet_cut

R = SAMPLE_RATE


def test_windows_tile_the_track(spoken_video):
    path, lines = spoken_video
    reader = AudioReader(str(path), window_s=5)
    windows = list(reader.windows())
    # the boundaries at 5 s and 10 s fall in silence, where a window keeps its full length
    assert [len(w.samples) for w in windows[:-1]] == [5 * SAMPLE_RATE] * (len(windows) - 1)
    assert all(w.samples.dtype == np.float32 and w.samples.ndim == 1 for w in windows)
    assert windows[0].start == 0.0
    for before, after in zip(windows, windows[1:]):
        assert after.start == pytest.approx(before.end)
    assert windows[-1].end == pytest.approx(12.0, abs=0.1)
    assert reader.duration == pytest.approx(12.0, abs=0.1)
    assert reader.bad_packets == 0
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
    assert reader.bad_packets == damaged


def test_quiet_cut_finds_the_pause():
    t = np.arange(5 * R) / R
    tone = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    paused = tone.copy()
    paused[int(3.5 * R):int(3.8 * R)] = 0
    assert 3.5 * R < quiet_cut(paused, 2 * R) < 3.8 * R
    paused[int(2.0 * R):int(2.5 * R)] = 0  # before the search span: not considered
    assert 3.5 * R < quiet_cut(paused, 2 * R) < 3.8 * R
    assert quiet_cut(np.zeros(5 * R, np.float32), 2 * R) == 5 * R  # silence keeps its length
    assert quiet_cut(tone[:1000], 2 * R) == 1000  # too short to search


def test_window_boundaries_move_into_pauses(spoken_video):
    path, lines = spoken_video
    whole = np.concatenate([w.samples for w in AudioReader(str(path), window_s=30).windows()])
    windows = list(AudioReader(str(path), window_s=2).windows())
    assert np.array_equal(np.concatenate([w.samples for w in windows]), whole)  # nothing lost
    assert all(1.0 * R <= len(w.samples) <= 2 * R for w in windows[:-1])
    level = lambda at: np.sqrt(np.mean(whole[max(0, at - 800):at + 800] ** 2))  # 100 ms around
    for w in windows[:-1]:
        cut = int(round(w.end * R))
        nominal = int(round((w.start + 2.0) * R))
        assert level(cut) <= level(nominal) + 1e-6


def test_a_stretch_is_the_track_between_its_bounds(spoken_video):
    """A shard decodes only [start, end) of the audio: its samples are the whole track's at
    those times (within one AAC frame of the seek, which the drop makes exact), and stretches
    that meet tile the track."""
    path = str(spoken_video[0])
    reader = AudioReader(path, window_s=4)
    whole = np.concatenate([w.samples for w in reader.windows()])
    pieces = [list(reader.windows(None, 5.0)), list(reader.windows(5.0, 9.5)),
              list(reader.windows(9.5, None))]
    assert pieces[0][0].start == 0.0
    assert pieces[1][0].start == pytest.approx(5.0, abs=1 / R)
    assert pieces[2][0].start == pytest.approx(9.5, abs=1 / R)
    assert pieces[0][-1].end == pytest.approx(5.0, abs=1 / R)
    assert pieces[1][-1].end == pytest.approx(9.5, abs=1 / R)
    assert sum(len(w.samples) for w in pieces[0] + pieces[1] + pieces[2]) == pytest.approx(len(whole), abs=2)
    middle = np.concatenate([w.samples for w in pieces[1]])
    # after a seek the AAC decoder has no pre-roll (its first frame, ~370 samples at 16 kHz, may
    # differ) and the resampler starts at another sub-sample phase; the rest is the same audio,
    # aligned to the sample
    settled = slice(800, len(middle) - 10)

    def match(lag: int) -> float:
        return float(np.corrcoef(middle[settled], whole[5 * R + lag:5 * R + lag + len(middle)][settled])[0, 1])

    assert match(0) > 0.99 and match(0) > max(match(-1), match(1)) + 0.05
    assert all(len(w.samples) <= 4 * R for piece in pieces for w in piece)

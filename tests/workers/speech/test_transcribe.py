"""transcribe() by mode, and bad input as notes: no audio, silence, corrupt audio."""

from __future__ import annotations

import pytest

from tests.speech_videos import corrupt_audio_packets, make_speech_video
from tests.workers.speech.conftest import CUES
from vidsift.core.config import SpeechConfig
from vidsift.core.errors import ConfigError
from vidsift.workers.speech import get_asr, transcribe


def test_mode_none_reads_nothing(subtitled_video):
    assert transcribe(str(subtitled_video), SpeechConfig(mode="none")).to_dict() == {
        "segments": [], "sources": [], "warnings": []}


def test_auto_falls_back_to_asr(spoken_video):
    transcript = transcribe(str(spoken_video[0]), SpeechConfig(mode="auto", sidecars=False))
    assert transcript.sources == ["asr moonshine"] and transcript.segments


def test_asr_mode_ignores_subtitles(subtitled_video):
    transcript = transcribe(str(subtitled_video), SpeechConfig(mode="asr"))
    assert transcript.sources == ["asr moonshine"]
    assert all(s.source == "asr:moonshine" for s in transcript.segments)


def test_progress_reaches_the_end(spoken_video):
    seen = []
    transcribe(str(spoken_video[0]), SpeechConfig(mode="asr", window_s=4), progress=lambda a, b: seen.append((a, b)))
    assert len(seen) >= 3 and seen[-1][0] == pytest.approx(seen[-1][1]) == pytest.approx(12.0, abs=0.1)
    assert [a for a, _ in seen] == sorted(a for a, _ in seen)


def test_no_audio_track_is_a_note(speech_dir):
    path = speech_dir / "mute-subs.mp4"
    make_speech_video(path, 8, audio="none", cues=CUES, subtitle_codec="mov_text")
    transcript = transcribe(str(path), SpeechConfig(mode="asr"))
    assert transcript.to_dict() == {"segments": [], "sources": [], "warnings": [f"{path}: no audio track"]}


def test_silent_audio_is_a_note(speech_dir):
    path = speech_dir / "silent.mp4"
    make_speech_video(path, 5, audio="silent")
    transcript = transcribe(str(path), SpeechConfig(mode="asr"))
    assert transcript.segments == []
    assert len(transcript.warnings) == 1 and transcript.warnings[0].startswith(f"{path}: no speech recognised in 5.")


def test_corrupt_audio_beside_good_video(speech_dir, spoken_video):
    import av

    path = speech_dir / "corrupt-all.mp4"
    path.write_bytes(spoken_video[0].read_bytes())
    damaged = corrupt_audio_packets(path, every=1)
    transcript = transcribe(str(path), SpeechConfig(mode="auto"))
    assert f"{path}: {damaged} audio packet(s) could not be decoded and were skipped" in transcript.warnings
    with av.open(str(path)) as container:  # the pictures are untouched
        assert sum(1 for _ in container.decode(video=0)) == 120


def test_unknown_backend_is_a_config_error():
    cfg = SpeechConfig.model_construct(asr_backend="kaldi")
    with pytest.raises(ConfigError, match="unknown speech.asr_backend 'kaldi'.*pocketsphinx \\| whisper"):
        get_asr(cfg)


def test_stretches_join_with_each_moment_once():
    """A sentence said across a shard boundary is heard whole by the shard it began in (its audio
    runs past its share) and in part by the next: the part goes, what follows it stays."""
    from vidsift.core.types import Transcript
    from vidsift.core.types import TranscriptSegment as Segment
    from vidsift.workers.speech import Heard, add_heard

    first = Heard([Segment(1.0, 3.0, "one"), Segment(5.0, 7.5, "across the boundary")], decoded_s=6.0)
    second = Heard([Segment(6.0, 7.48, "the boundary"), Segment(9.0, 10.0, "two")], decoded_s=6.0)
    joined = Transcript()
    add_heard(joined, "talk.mp4", SpeechConfig(mode="asr"), [first, second])
    assert [s.text for s in joined.segments] == ["one", "across the boundary", "two"]
    assert joined.warnings == []

"""Embedded subtitle tracks (mov_text, subrip, ass, webvtt via PyAV) and sidecar files: exact
text and exact times; a broken sidecar file is a warning and the next one is read."""

from __future__ import annotations

import pytest

from tests.speech_videos import make_speech_video, srt
from tests.workers.speech.conftest import CUES
from vidsift.core.config import SpeechConfig
from vidsift.core.transcript import SubtitleParseError
from vidsift.core.types import TranscriptSegment as Seg
from vidsift.workers.speech import transcribe
from vidsift.workers.speech.subtitles import embedded_subtitles, read_sidecar, sidecar_files


def expected(source):
    return [Seg(a, b, text, source) for a, b, text in CUES]


def test_mov_text_track_exact(subtitled_video):
    warnings = []
    segments, description = embedded_subtitles(str(subtitled_video), None, warnings)
    assert segments == expected("subtitle:2")
    assert description == "subtitle stream 2 (mov_text, eng)"
    assert warnings == []


@pytest.mark.parametrize("codec", ["srt", "ass", "webvtt"])
def test_matroska_text_tracks_exact(speech_dir, codec):
    path = speech_dir / f"track-{codec}.mkv"
    make_speech_video(path, 8, audio="none", cues=CUES, subtitle_codec=codec)
    transcript = transcribe(str(path), SpeechConfig(mode="subtitles"))
    assert transcript.segments == expected("subtitle:1")
    assert transcript.warnings == []


def test_no_subtitles_is_an_empty_transcript_without_a_note(spoken_video, tmp_path):
    """Subtitles are read by default: most videos have none, which is nothing to warn about
    (the note was logged on every ask and caption of such a video)."""
    transcript = transcribe(str(spoken_video[0]), SpeechConfig(mode="subtitles", sidecars=False))
    assert transcript.segments == [] and transcript.sources == [] and transcript.warnings == []


@pytest.fixture
def video_with_sidecars(tmp_path, spoken_video):
    video = tmp_path / "movie.mp4"
    video.write_bytes(spoken_video[0].read_bytes())
    (tmp_path / "movie.srt").write_text(srt([(0.5, 1.0, "untagged")]))
    (tmp_path / "movie.en.vtt").write_text("WEBVTT\n\n00:00:01.250 --> 00:00:03.500\nThe password is falcon\n")
    (tmp_path / "movie.fr.srt").write_text(srt([(0.5, 1.0, "french")]))
    (tmp_path / "movie.part2.srt").write_text(srt([(0.5, 1.0, "another video")]))
    (tmp_path / "other.srt").write_text(srt([(0.5, 1.0, "another video")]))
    return video


def test_sidecars_in_language_first(video_with_sidecars):
    assert [p.name for p in sidecar_files(str(video_with_sidecars), "en")] == [
        "movie.en.vtt", "movie.srt", "movie.fr.srt"]
    assert [p.name for p in sidecar_files(str(video_with_sidecars), None)] == [
        "movie.srt", "movie.en.vtt", "movie.fr.srt"]
    transcript = transcribe(str(video_with_sidecars), SpeechConfig(mode="subtitles", language="en"))
    assert transcript.segments == [Seg(1.25, 3.5, "The password is falcon", "sidecar:movie.en.vtt")]
    assert transcript.sources == ["sidecar movie.en.vtt"]


def test_broken_sidecar_is_a_warning_and_the_next_is_read(video_with_sidecars):
    broken = video_with_sidecars.parent / "movie.en.vtt"
    broken.write_text("WEBVTT\n\n00:00:01.250 --> whenever\nThe password is falcon\n")
    transcript = transcribe(str(video_with_sidecars), SpeechConfig(mode="subtitles", language="en"))
    assert transcript.segments == [Seg(0.5, 1.0, "untagged", "sidecar:movie.srt")]
    assert transcript.warnings == [
        f"sidecar subtitles not used: {broken}: line 3: malformed timing '00:00:01.250 --> whenever'"]


def test_read_sidecar_names_the_file(tmp_path):
    bad = tmp_path / "x.srt"
    bad.write_bytes(b"\x00\x01 not subtitles")
    with pytest.raises(SubtitleParseError, match=f"{bad}: no subtitle cues found"):
        read_sidecar(bad)


def test_embedded_track_wins_over_sidecar(subtitled_video, tmp_path):
    video = tmp_path / "s.mp4"
    video.write_bytes(subtitled_video.read_bytes())
    (tmp_path / "s.srt").write_text(srt([(0.5, 1.0, "sidecar")]))
    assert transcribe(str(video), SpeechConfig(mode="auto")).segments == expected("subtitle:2")

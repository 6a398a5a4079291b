"""video_transcript: made once, then read from the store."""

from __future__ import annotations

from tests.speech_videos import make_speech_video
from vidsift.core.config import load_config
from vidsift.core.media import content_hash
from vidsift.index.transcripts import TranscriptStore
from vidsift.pipeline.speech import video_transcript

CUES = [(1.25, 3.5, "The password is falcon")]


def test_transcript_is_stored_and_reused(tmp_path, monkeypatch):
    video = tmp_path / "talk.mp4"
    make_speech_video(video, 5, audio="none", cues=CUES, subtitle_codec="mov_text")
    cfg = load_config(None, [f"index.dir={tmp_path / 'index'}", "speech.mode=subtitles"])
    first = video_transcript(str(video), cfg)
    assert [(s.start, s.end, s.text) for s in first.segments] == CUES
    stored = TranscriptStore(cfg.index.dir).path(content_hash(video), cfg.speech.key())
    assert stored.is_file()

    def fail(*args, **kwargs):
        raise AssertionError("transcribed again")

    monkeypatch.setattr("vidsift.workers.speech.transcribe", fail)
    assert video_transcript(str(video), cfg) == first


def test_mode_none_is_empty_and_stores_nothing(tmp_path):
    cfg = load_config(None, [f"index.dir={tmp_path / 'index'}"])
    assert video_transcript(str(tmp_path / "missing.mp4"), cfg).segments == []
    assert not (tmp_path / "index").exists()

"""video_transcript: made once, then read from the store."""

from __future__ import annotations

import json

from tests.speech_videos import make_speech_video
from vidsift.core.config import load_config
from vidsift.core.media import content_hash
from vidsift.index.transcripts import TranscriptStore
from vidsift.pipeline.flows.speech import video_transcript

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
    cfg = load_config(None, [f"index.dir={tmp_path / 'index'}", "speech.mode=none"])
    assert video_transcript(str(tmp_path / "missing.mp4"), cfg).segments == []
    assert not (tmp_path / "index").exists()


def test_cli_transcribe_srt_vtt_json(tmp_path):
    from typer.testing import CliRunner

    from vidsift.pipeline.cli import app

    video = tmp_path / "talk.mp4"
    make_speech_video(video, 5, audio="none", cues=CUES + [(3.5, 4.25, "Two\nlines")], subtitle_codec="mov_text")
    runner = CliRunner()
    common = ["--index-dir", str(tmp_path / "index")]
    srt = runner.invoke(app, ["transcribe", str(video), *common])
    assert srt.exit_code == 0, srt.output
    assert srt.stdout == ("1\n00:00:01,250 --> 00:00:03,500\nThe password is falcon\n\n"
                          "2\n00:00:03,500 --> 00:00:04,250\nTwo\nlines\n")
    out = tmp_path / "talk.vtt"
    vtt = runner.invoke(app, ["transcribe", str(video), "--speech", "subtitles", "-f", "vtt", "-o", str(out), *common])
    assert vtt.exit_code == 0, vtt.output
    assert out.read_text() == ("WEBVTT\n\n00:00:01.250 --> 00:00:03.500\nThe password is falcon\n\n"
                               "00:00:03.500 --> 00:00:04.250\nTwo\nlines\n")
    as_json = runner.invoke(app, ["transcribe", str(video), "--speech", "asr", "-f", "json", *common])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == {"video": str(video), "segments": [], "sources": [],
                                          "warnings": [f"{video}: no audio track"]}
    assert f"note: {video}: no audio track\n" in as_json.stderr  # one line, never folded


def test_cli_transcribe_bad_input(tmp_path):
    from typer.testing import CliRunner

    from vidsift.pipeline.cli import app

    runner = CliRunner()
    missing = runner.invoke(app, ["transcribe", str(tmp_path / "nope.mp4"), "--index-dir", str(tmp_path)])
    assert missing.exit_code == 1 and "nope.mp4: file not found" in " ".join(missing.stderr.split())
    bad = runner.invoke(app, ["transcribe", str(tmp_path / "nope.mp4"), "--speech", "loud"])
    assert bad.exit_code == 1
    assert bad.stderr.splitlines() == ["error: --speech loud: choose one of subtitles | asr | auto"]


def test_speech_in_clips_and_fuse_text():
    import numpy as np

    from vidsift.core.types import TranscriptSegment as Seg
    from vidsift.pipeline.plan.clips import fuse_text, speech_in_clips

    spans = [(0.0, 5.0), (5.0, 10.0), (10.0, 12.0)]
    segments = [Seg(1.0, 2.0, "hello  there"), Seg(4.5, 6.0, "across\nthe cut"), Seg(6.0, 7.0, "second")]
    speech = speech_in_clips(spans, segments)
    assert speech == ["hello there across the cut", "across the cut second", ""]
    vectors = np.eye(3, 4, dtype=np.float32)
    speech_vectors = np.array([[0, 0, 0, 1], [0, 0, 0, 1], [9, 9, 9, 9]], np.float32)
    texts, fused = fuse_text(["labels: tv", "", "labels: sky"], vectors, speech, speech_vectors)
    assert texts == ["labels: tv | speech: hello there across the cut", "speech: across the cut second",
                     "labels: sky"]
    h = np.float32(np.sqrt(0.5))
    np.testing.assert_allclose(fused, [[h, 0, 0, h], [0, h, 0, h], [0, 0, 1, 0]], atol=1e-6)
    assert np.array_equal(vectors, np.eye(3, 4))  # inputs untouched


def test_cli_transcribe_recognises_speech_unless_told_subtitles(tmp_path):
    """The preset reads subtitles only (speech.mode subtitles, for index and ask); transcribe is
    asked for what is said, so without --speech it falls back to recognition (auto), and a
    --set speech.mode=subtitles that finds none says why its output is empty."""
    from typer.testing import CliRunner

    from tests.speech_videos import Line
    from vidsift.pipeline.cli import app

    video = tmp_path / "talk.mp4"
    make_speech_video(video, 4, lines=[Line(0.5, "The password is falcon")])
    common = ["--index-dir", str(tmp_path / "index")]
    heard = CliRunner().invoke(app, ["transcribe", str(video), "-f", "json", *common])
    assert heard.exit_code == 0, heard.output
    payload = json.loads(heard.stdout)
    assert payload["sources"] == ["asr moonshine"] and "falcon" in payload["segments"][0]["text"]
    told = CliRunner().invoke(app, ["transcribe", str(video), "--set", "speech.mode=subtitles",
                                    *common])
    assert told.exit_code == 0 and told.stdout == ""
    assert told.stderr.splitlines() == [
        f"note: {video}: no text subtitle track and no sidecar subtitle file"]

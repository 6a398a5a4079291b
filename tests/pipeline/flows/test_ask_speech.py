"""Speech in ask: a fact only said (a subtitle track), never shown, pulls the frames at its time
into the evidence and its line, with its exact times, into the result and the prompt; with
speech off it does not; a second ask embeds no transcript line again."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.speech_videos import srt
from tests.videos import make_scene_video, run_ffmpeg
from vidsift.core.config import load_config
from vidsift.pipeline.cli import app
from vidsift.pipeline.flows.ask import Asker

pytestmark = pytest.mark.slow

SAID = (21.0, 24.5, "The vault code is seven four two nine")
QUESTION = "What is the vault code?"
CUES = [(2.0, 4.0, "Welcome to the weekly meeting"), SAID,
        (33.0, 35.0, "Thank you for watching")]


@pytest.fixture(scope="module")
def spoken_video(tmp_path_factory):
    root = tmp_path_factory.mktemp("ask-speech")
    scenes = make_scene_video(root / "scenes.mp4", ["smptebars", "testsrc", "color=c=blue",
                                                    "color=c=green", "rgbtestsrc",
                                                    "color=c=gray", "testsrc2", "color=c=red"],
                              size="160x120")
    cues = root / "cues.srt"
    cues.write_text(srt(CUES))
    video = root / "meeting.mp4"
    run_ffmpeg("-i", str(scenes), "-i", str(cues), "-map", "0", "-map", "1", "-c:v", "copy",
               "-c:s", "mov_text", "-metadata:s:s:0", "language=eng", str(video))
    return video


def _config(index_dir, *extra):
    return load_config("default", ["embed.ocr=false", "budget.tokens=300", "vlm.model=none",
                                   f"index.dir={index_dir}", *extra])


def _covers(segment, start, end):
    return segment["start"] <= end and segment["end"] >= start


def test_spoken_fact_pulls_its_moment_and_its_line(ray_cluster, spoken_video, tmp_path):
    cfg = _config(tmp_path / "index", "speech.mode=subtitles")
    asker = Asker(cfg)
    calls = []
    embed_text = asker.pool.embed_text

    def counting(texts):
        calls.append(list(texts))
        return embed_text(texts)

    asker.pool.embed_text = counting
    try:
        first = asker.ask(str(spoken_video), QUESTION)
        second = asker.ask(str(spoken_video), QUESTION)
    finally:
        asker.close()
    assert any(_covers(seg, SAID[0], SAID[1]) for seg in first.segments)
    assert {"start": 21.0, "end": 24.5, "text": SAID[2]} in first.speech
    assert first.speech == sorted(first.speech, key=lambda line: line["start"])
    info = first.speech_info
    assert info["lines"] == len(first.speech) and info["counted_by"] == "approximate"
    assert 0 < info["tokens"] <= info["allowance"] == 512 and info["warnings"] == []
    # the transcript's three lines were embedded once, by the first ask; then only questions
    assert calls == [[QUESTION], [c[2] for c in CUES], [QUESTION]]
    assert second.speech == first.speech and second.segments == first.segments


def test_speech_off_leaves_the_moment_and_the_lines_out(ray_cluster, spoken_video, tmp_path):
    cfg = _config(tmp_path / "index")
    asker = Asker(cfg)
    try:
        result = asker.ask(str(spoken_video), QUESTION)
    finally:
        asker.close()
    assert not any(_covers(seg, SAID[0], SAID[1]) for seg in result.segments)
    assert result.speech == [] and result.speech_info == {}


def test_the_model_reads_the_lines_within_the_counted_allowance(ray_cluster, spoken_video,
                                                                tiny_qwen_dir, tmp_path):
    from vidsift.core.types import TranscriptSegment
    from vidsift.workers.vlm.prompt import transcript_text

    cfg = _config(tmp_path / "index", "speech.mode=subtitles", f"vlm.model={tiny_qwen_dir}",
                  "vlm.device=cpu", "vlm.dtype=float32", "vlm.max_new_tokens=4")
    asker = Asker(cfg)
    try:
        result = asker.ask(str(spoken_video), QUESTION)
        count, how = asker.text_counter
        # an allowance one token short of the line leaves it out, and says so
        tight = cfg.model_copy(update={"budget": cfg.budget.model_copy(
            update={"speech_tokens": result.speech_info["tokens"] - 1})})
        asker.cfg = tight
        trimmed = asker.ask(str(spoken_video), QUESTION)
    finally:
        asker.close()
    assert isinstance(result.answer, str) and how == "tokenizer"
    lines = [TranscriptSegment(**line) for line in result.speech]
    assert {"start": 21.0, "end": 24.5, "text": SAID[2]} in result.speech
    assert result.speech_info["counted_by"] == "tokenizer"
    assert result.speech_info["tokens"] == count(transcript_text(lines))
    assert trimmed.speech == [] and trimmed.speech_info["tokens"] == 0
    assert trimmed.speech_info["dropped"] == len(result.speech)
    assert trimmed.vlm["visual_tokens"] == result.vlm["visual_tokens"] == result.tokens

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
    cfg = _config(tmp_path / "index", "speech.mode=none")
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


def invoke(*args):
    return CliRunner().invoke(app, list(args))


def test_speech_flag_on_ask_index_and_caption(ray_cluster, spoken_video, tmp_path):
    index_dir = str(tmp_path / "index")
    asked = invoke("ask", str(spoken_video), QUESTION, "--speech", "subtitles", "--model", "none",
                   "--budget", "300", "--index-dir", index_dir, "--set", "embed.ocr=false",
                   "--json")
    assert asked.exit_code == 0, asked.output
    payload = json.loads(asked.stdout)
    assert {"start": 21.0, "end": 24.5, "text": SAID[2]} in payload["speech"]
    assert payload["speech_info"]["lines"] == len(payload["speech"])
    text = invoke("ask", str(spoken_video), QUESTION, "--speech", "subtitles", "--model", "none",
                  "--budget", "300", "--index-dir", index_dir, "--set", "embed.ocr=false")
    assert f"said 0:00:21-0:00:24: {SAID[2]}" in text.stdout
    indexed = invoke("index", str(spoken_video), "--speech", "subtitles", "--index-dir", index_dir,
                     "--set", "embed.ocr=false", "--json")
    assert indexed.exit_code == 0, indexed.output
    found = json.loads(invoke("search", "vault code seven four two nine", "-k", "1", "--index-dir",
                              index_dir, "--set", "embed.ocr=false", "--json").stdout)["hits"]
    assert found[0]["text"].endswith(f" | speech: {SAID[2]}")
    # each command maps --speech to speech.mode: a mode that is none of the four is one line
    for command in (["ask", str(spoken_video), QUESTION, "--model", "none"],
                    ["index", str(spoken_video)],
                    ["caption", str(tmp_path), "--out", str(tmp_path / "captions")]):
        wrong = invoke(*command, "--speech", "loud")
        assert wrong.exit_code == 1 and wrong.stderr.splitlines() == [
            "error: --speech loud: choose one of none | subtitles | asr | auto"], command


def test_speech_field_on_http_ask_and_index_jobs(ray_cluster, spoken_video, tmp_path):
    from tests.pipeline.service.test_http import _wait_all, running

    root = spoken_video.parent
    cfg = load_config("default", [  # speech off, unless a job's "speech" asks for it
        f"serve.data_dir={tmp_path / 'svc'}", f"serve.media_roots=[{root}]",
        f"index.dir={tmp_path / 'svc' / 'index'}", "vlm.model=none", "embed.ocr=false",
        "budget.tokens=300", "speech.mode=none"])
    with running(cfg) as client:
        bad = client.post("/v1/jobs", json={"video": spoken_video.name, "question": QUESTION,
                                            "speech": "loud"})
        assert bad.status_code == 422 and "speech" in bad.json()["error"]
        ids = [client.post("/v1/jobs", json={"video": spoken_video.name, "question": QUESTION,
                                             **speech}).json()["id"]
               for speech in ({"speech": "subtitles"}, {})]
        indexing = client.post("/v1/index", json={"paths": [spoken_video.name],
                                                  "speech": "subtitles"}).json()["id"]
        jobs = _wait_all(client, [*ids, indexing])
        spoken, plain = (jobs[i]["result"] for i in ids)
        assert jobs[ids[0]]["request"]["speech"] == "subtitles"
        assert {"start": 21.0, "end": 24.5, "text": SAID[2]} in spoken["speech"]
        assert plain["speech"] == [] and "speech" not in jobs[ids[1]]["request"]
        assert jobs[indexing]["status"] == "succeeded", jobs[indexing]["error"]
        hits = client.get("/v1/search", params={"q": "vault code seven four two nine",
                                                "k": 1}).json()["hits"]
        assert hits[0]["text"].endswith(f" | speech: {SAID[2]}")


def test_the_transcript_retrieves_beside_an_index_made_without_speech(ray_cluster, spoken_video,
                                                                      tmp_path):
    index_dir = tmp_path / "index"
    indexed = invoke("index", str(spoken_video), "--index-dir", str(index_dir), "--speech", "none",
                     "--set", "embed.ocr=false", "--json")
    assert indexed.exit_code == 0, indexed.output
    asker = Asker(_config(index_dir, "speech.mode=subtitles", "selection.max_anchors=2"))
    try:
        result = asker.ask(str(spoken_video), QUESTION)
    finally:
        asker.close()
    # the clips the index found hold no word of it; the spoken line's moment joins them
    assert result.retrieved and not any(_covers(hit, SAID[0], SAID[1]) for hit in result.retrieved)
    assert any(_covers(seg, SAID[0], SAID[1]) for seg in result.segments)
    assert {"start": 21.0, "end": 24.5, "text": SAID[2]} in result.speech

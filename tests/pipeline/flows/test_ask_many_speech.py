"""Speech when asking across the clip index (no video given): a fact only said in one video of
three (its subtitle track), never shown, pulls that video's frames at the spoken time into the
one token set, and its line, with its video and exact times, into the result and the prompt
within budget.speech_tokens; with speech off it does not. Retrieval finds the spoken clip when
the index was made with speech; made without, the retrieved videos' transcripts join the clips."""

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
MEETING_CUES = [(2.0, 4.0, "Welcome to the weekly meeting"), SAID,
                (33.0, 35.0, "Thank you for watching")]
# another video's sidecar: speech, none of it about the question
TOUR_CUES = [(1.0, 3.0, "This is the garden behind the house"),
             (11.0, 13.5, "The roses bloom in early summer")]
BUDGET = 600


@pytest.fixture(scope="module")
def library(tmp_path_factory, ray_cluster):
    """videos/meeting.mp4 (8 scenes of 5 s, MEETING_CUES in a mov_text track), tour.mp4 (4
    scenes, TOUR_CUES in tour.srt beside it), plain.mp4 (4 scenes, nothing said); indexed
    into index-speech (speech.mode subtitles: what is said is in the clips' text) and
    index-plain (pixels only)."""
    from vidsift.pipeline.flows.index import index_videos

    root = tmp_path_factory.mktemp("many-speech")
    videos = root / "videos"
    videos.mkdir()
    scenes = make_scene_video(root / "scenes.mp4", [
        "smptebars", "testsrc", "color=c=blue", "color=c=green", "rgbtestsrc", "color=c=gray",
        "testsrc2", "color=c=red"], size="160x120")
    (root / "cues.srt").write_text(srt(MEETING_CUES))
    run_ffmpeg("-i", str(scenes), "-i", str(root / "cues.srt"), "-map", "0", "-map", "1",
               "-c:v", "copy", "-c:s", "mov_text", "-metadata:s:s:0", "language=eng",
               str(videos / "meeting.mp4"))
    make_scene_video(videos / "tour.mp4", ["color=c=yellow", "testsrc", "color=c=cyan",
                                           "smptebars"], size="160x120")
    (videos / "tour.srt").write_text(srt(TOUR_CUES))
    make_scene_video(videos / "plain.mp4", ["color=c=green", "rgbtestsrc", "color=c=white",
                                            "testsrc2"], size="160x120")
    for name, extra in (("index-speech", ["speech.mode=subtitles"]),
                        ("index-plain", ["speech.mode=none"])):
        summary = index_videos([videos], _config(root / name, *extra))
        assert len(summary.indexed) == 3, summary.failed
    return root


def _config(index_dir, *extra):
    return load_config("default", [f"index.dir={index_dir}", f"budget.tokens={BUDGET}",
                                   "embed.ocr=false", "vlm.model=none", *extra])


def _video(library, name):
    return str((library / "videos" / name).resolve())


def _clock(seconds):
    """H:MM:SS of whole seconds, as the evidence lines print times."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _covers(span, start, end):
    return span["start"] <= end and span["end"] >= start


def _ask(cfg, question=QUESTION):
    asker = Asker(cfg)
    try:
        return asker.ask(None, question)
    finally:
        asker.close()



def test_the_fact_said_in_one_video_is_planned_and_quoted_with_its_video(library):
    meeting, tour = _video(library, "meeting.mp4"), _video(library, "tour.mp4")
    asker = Asker(_config(library / "index-speech", "speech.mode=subtitles"))
    try:
        result = asker.ask(None, QUESTION)
        # an allowance one token short of both lines drops the less similar one: the tour's
        asker.cfg = asker.cfg.model_copy(update={"budget": asker.cfg.budget.model_copy(
            update={"speech_tokens": result.speech_info["tokens"] - 1})})
        trimmed = asker.ask(None, QUESTION)
    finally:
        asker.close()
    # index-time speech: the clip's text holds what is said there, so the index finds it
    assert result.retrieved[0]["video"] == meeting and _covers(result.retrieved[0], *SAID[:2])
    assert result.retrieved[0]["text"].endswith(f" | speech: {SAID[2]}")
    assert result.videos[0] == meeting and len(result.videos) > 1
    assert any(seg["video"] == meeting and _covers(seg, *SAID[:2]) for seg in result.segments)
    assert result.tokens == sum(seg["tokens"] for seg in result.segments) <= BUDGET
    # the lines said during each video's own segments, the leading video's first
    line = {"video": meeting, "start": 21.0, "end": 24.5, "text": SAID[2]}
    assert result.speech[0] == line
    # and one of the tour's lines: which one follows the tour's segment (coverage; neither
    # line is about the question), said during it (checked below)
    [tour_line] = result.speech[1:]
    assert tour_line["video"] == tour
    assert (tour_line["start"], tour_line["end"], tour_line["text"]) in TOUR_CUES
    for said in result.speech:
        assert any(seg["video"] == said["video"] and _covers(seg, said["start"] - 1.0,
                                                             said["end"] + 1.0)
                   for seg in result.segments)
    info = result.speech_info
    assert info["lines"] == 2 and info["dropped"] == 0 and info["counted_by"] == "approximate"
    assert 0 < info["tokens"] <= info["allowance"] == 512
    assert info["sources"] == ["subtitle stream 1 (mov_text, eng)", "sidecar tour.srt"]
    assert info["warnings"] == []  # plain.mp4 has no subtitles: nothing to warn about
    assert "speech" in result.timings
    shown = result.evidence_lines()
    assert f"said meeting.mp4 0:00:21-0:00:24: {SAID[2]}" in shown
    assert (f"said tour.mp4 {_clock(tour_line['start'])}-{_clock(tour_line['end'])}: "
            f"{tour_line['text']}") in shown
    assert trimmed.speech == [line] and trimmed.segments == result.segments
    assert trimmed.speech_info["dropped"] == 1
    assert 0 < trimmed.speech_info["tokens"] <= trimmed.speech_info["allowance"] == (
        info["tokens"] - 1)


def test_speech_off_across_the_index_leaves_the_moment_and_the_lines_out(library):
    meeting = _video(library, "meeting.mp4")
    result = _ask(_config(library / "index-speech", "speech.mode=none"))
    assert result.retrieved[0]["video"] == meeting  # the index's text still holds the speech
    assert not any(seg["video"] == meeting and _covers(seg, *SAID[:2])
                   for seg in result.segments)
    assert result.speech == [] and result.speech_info == {} and "speech" not in result.timings


def test_an_index_made_without_speech_the_transcripts_join_the_clips(library):
    meeting = _video(library, "meeting.mp4")
    spoken = _ask(_config(library / "index-plain", "speech.mode=subtitles"))
    plain = _ask(_config(library / "index-plain", "speech.mode=none"))
    # no clip the index found holds the spoken moment, and pixels alone lead elsewhere
    assert spoken.retrieved == plain.retrieved
    assert not any(hit["video"] == meeting and _covers(hit, *SAID[:2])
                   for hit in spoken.retrieved)
    assert plain.videos[0] != meeting
    assert not any(seg["video"] == meeting and _covers(seg, *SAID[:2]) for seg in plain.segments)
    # the meeting's best line joins its clips: it leads, with the most tokens, and shows the
    # moment; its line is quoted
    assert spoken.videos[0] == meeting
    per_video = {}
    for seg in spoken.segments:
        per_video[seg["video"]] = per_video.get(seg["video"], 0) + seg["tokens"]
    assert max(per_video, key=per_video.get) == meeting
    assert any(seg["video"] == meeting and _covers(seg, *SAID[:2]) for seg in spoken.segments)
    assert spoken.speech[0] == {"video": meeting, "start": 21.0, "end": 24.5, "text": SAID[2]}


def test_the_model_reads_each_line_with_its_video_within_the_counted_allowance(
        library, tiny_qwen_dir):
    from vidsift.workers.vlm.prompt import evidence_parts, transcript_text

    asker = Asker(_config(library / "index-speech", "speech.mode=subtitles",
                          f"vlm.model={tiny_qwen_dir}", "vlm.device=cpu", "vlm.dtype=float32",
                          "vlm.max_new_tokens=4"))
    requests = []
    generate = asker.vlm.generate

    def recording(batch):
        requests.extend(batch)
        return generate(batch)

    asker.vlm.generate = recording
    try:
        result = asker.ask(None, QUESTION)
        count, how = asker.text_counter
    finally:
        asker.close()
    assert isinstance(result.answer, str) and how == "tokenizer"
    [request] = requests
    text = "".join(part for part in evidence_parts(request.token_set, QUESTION,
                                                   transcript=request.transcript)
                   if isinstance(part, str))
    # each line names its video's file, as the segment labels do
    assert f"21.0s-24.5s: meeting.mp4: {SAID[2]}\n" in text
    [tour_line] = [line for line in result.speech if line["video"].endswith("tour.mp4")]
    assert (f"{tour_line['start']:.1f}s-{tour_line['end']:.1f}s: tour.mp4: "
            f"{tour_line['text']}\n") in text
    assert result.speech_info["counted_by"] == "tokenizer"
    assert result.speech_info["tokens"] == count(transcript_text(request.transcript))
    assert result.vlm["visual_tokens"] == result.tokens <= BUDGET


def test_cli_asks_across_the_index_with_speech(library):
    outcome = CliRunner().invoke(app, [
        "ask", QUESTION, "--index-dir", str(library / "index-speech"), "--speech", "subtitles",
        "--model", "none", "--budget", str(BUDGET), "--set", "embed.ocr=false", "--json"])
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.stdout)
    meeting = _video(library, "meeting.mp4")
    assert payload["videos"][0] == meeting
    assert {"video": meeting, "start": 21.0, "end": 24.5, "text": SAID[2]} in payload["speech"]
    assert payload["speech_info"]["lines"] == len(payload["speech"])


def test_http_ask_job_without_a_video_takes_the_speech_field(library, tmp_path):
    from tests.pipeline.service.test_http import _wait_all, running

    cfg = load_config("default", [  # speech off, unless a job's "speech" asks for it
        f"serve.data_dir={tmp_path / 'svc'}", f"serve.media_roots=[{library / 'videos'}]",
        f"index.dir={library / 'index-speech'}", "vlm.model=none", "embed.ocr=false",
        f"budget.tokens={BUDGET}", "speech.mode=none"])
    meeting = _video(library, "meeting.mp4")
    with running(cfg) as client:
        ids = [client.post("/v1/jobs", json={"question": QUESTION, **speech}).json()["id"]
               for speech in ({"speech": "subtitles"}, {})]
        jobs = _wait_all(client, ids)
    spoken, plain = (jobs[i]["result"] for i in ids)
    assert spoken["video"] == "" and spoken["videos"][0] == meeting
    assert spoken["speech"][0] == {"video": meeting, "start": 21.0, "end": 24.5, "text": SAID[2]}
    assert spoken["speech_info"]["lines"] == len(spoken["speech"])
    assert plain["speech"] == [] and plain["speech_info"] == {}

"""Asking with an odd video in the clip index, on Ray with the real offline embedder: a 16000 x 16
video (aspect 1000, where Qwen-VL's processor takes at most 200) indexed beside two ordinary
ones is planned letterboxed, asked about alone or across the index; a video that can no longer
be read is left out of an answer across the index and named in its notes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.pipeline.flows.test_ask_many import BUDGET, _config, _text_card
from tests.pipeline.service.test_http import _wait_all, running
from tests.videos import make_scene_video, run_ffmpeg
from vidsift.core.vision import MAX_ASPECT_RATIO, tokens_for
from vidsift.pipeline.cli import app
from vidsift.pipeline.flows.ask import Asker
from vidsift.pipeline.service.jobs import SUCCEEDED

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def library(tmp_path_factory, ray_cluster):
    """wide.mp4 (testsrc, 16000 x 16, 4 s), slides.mp4 (red, the words' card at 5-10 s, blue),
    bars.mp4 (smptebars, testsrc): indexed into root/index."""
    from vidsift.pipeline.flows.index import index_videos

    root = tmp_path_factory.mktemp("odd")
    videos = root / "videos"
    videos.mkdir()
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=16000x16:rate=5", "-t", "4", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", str(videos / "wide.mp4"))
    make_scene_video(videos / "slides.mp4", ["color=c=red", _text_card(root / "card.png"),
                                             "color=c=blue"])
    make_scene_video(videos / "bars.mp4", ["smptebars", "testsrc"])
    summary = index_videos([videos], _config(root / "index"))
    assert len(summary.indexed) == 3, summary.failed
    return root


def _path(library, name: str) -> str:
    return str((library / "videos" / name).resolve())


def _assert_letterboxed(segments, wide: str) -> None:
    """The wide video's segments are one token row high (16 px padded to 80, then resized),
    within the processor's aspect ratio, each costing what the model counts."""
    shown = [seg for seg in segments if seg["video"] == wide]
    assert shown
    for seg in shown:
        assert seg["height"] == 28 and seg["width"] / seg["height"] <= MAX_ASPECT_RATIO
        assert seg["tokens"] == tokens_for(len(seg["timestamps"]), seg["height"], seg["width"])


def test_across_the_index_a_16000x16_video_is_shown_letterboxed_beside_the_others(library):
    wide, slides = _path(library, "wide.mp4"), _path(library, "slides.mp4")
    asker = Asker(_config(library / "index"))
    decoded = {}
    frames_at = asker.pool.frames_at

    def keeping(path, timestamps, **kw):  # the real decode; its frames kept to look at
        frames = frames_at(path, timestamps, **kw)
        decoded.setdefault(path, []).extend(frames)
        return frames

    asker.pool.frames_at = keeping
    try:
        result = asker.ask(None, "quarterly budget review")
    finally:
        asker.close()
    assert result.videos[0] == slides and wide in result.videos and result.notes == []
    assert result.tokens == sum(s["tokens"] for s in result.segments) <= BUDGET
    _assert_letterboxed(result.segments, wide)
    # Its frames: testsrc's pixels in the middle 6 rows (16 * 28 / 80), black bars around.
    for frame in decoded[wide]:
        assert frame.image.shape[:2] == (28, frame.image.shape[1])
        assert not frame.image[:11].any() and not frame.image[17:].any()
        assert frame.image[11:17].mean() > 40


def test_asked_alone_the_16000x16_video_gives_letterboxed_evidence(library):
    wide = _path(library, "wide.mp4")
    outcome = CliRunner().invoke(app, [
        "ask", wide, "what pattern is shown?", "--index-dir", str(library / "index"),
        "--model", "none", "--budget", str(BUDGET), "--json"])
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.stdout)
    assert payload["video"] == wide and payload["notes"] == []
    assert payload["tokens"] == sum(s["tokens"] for s in payload["segments"]) <= BUDGET
    _assert_letterboxed(payload["segments"], wide)


def test_a_video_the_budget_holds_no_image_of_is_named_in_the_notes(library):
    """300 tokens hold two images at min_pixels (128 tokens each), not three: the third video
    retrieved is left out, and the notes say so."""
    asker = Asker(_config(library / "index"))
    try:
        result = asker.ask(None, "quarterly budget review", budget=300)
    finally:
        asker.close()
    left_out = [v for v in dict.fromkeys(h["video"] for h in result.retrieved)
                if v not in result.videos]
    assert len(result.videos) == 2 and len(left_out) == 1
    assert result.notes == [f"{left_out[0]}: left out of the answer: a budget of 300 visual "
                            "tokens holds no image of it beside the videos that match better"]


def test_videos_that_can_no_longer_be_read_are_left_out_and_named(library):
    """Run last. bars.mp4 is emptied after indexing (its ingest fails), and wide.mp4's bytes are
    damaged in place with its size and modification time kept, so its stored memory is still
    trusted and only the fine decode finds out. Across the index the answer comes from
    slides.mp4, and the notes (ask --json, the text output, the HTTP job result) say which
    videos were left out and why."""
    import os

    bars, wide = library / "videos" / "bars.mp4", library / "videos" / "wide.mp4"
    bars.write_bytes(b"")
    stat = wide.stat()
    wide.write_bytes(bytes(stat.st_size))
    os.utime(wide, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    arguments = ["ask", "quarterly budget review", "--index-dir", str(library / "index"),
                 "--model", "none", "--budget", str(BUDGET)]
    outcome = CliRunner().invoke(app, [*arguments, "--json"])
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.stdout)
    assert payload["videos"] == [_path(library, "slides.mp4")]
    ingest_note, decode_note = payload["notes"]
    assert ingest_note == f"{bars.resolve()}: left out of the answer: file is empty"
    assert decode_note.startswith(f"{wide.resolve()}: left out of the answer: ")
    shown = CliRunner().invoke(app, arguments)
    assert shown.exit_code == 0, shown.output
    assert "note:" in shown.output and "left out of the answer: file is empty" in " ".join(
        shown.output.split())
    # The HTTP service's job result carries the same notes.
    cfg = _config(library / "index", f"serve.data_dir={library / 'service'}",
                  f"serve.media_roots=[{library / 'videos'}]", "serve.workers=1")
    with running(cfg) as client:
        job_id = client.post("/v1/jobs", json={"question": "quarterly budget review"}).json()["id"]
        job = _wait_all(client, [job_id])[job_id]
    assert job["status"] == SUCCEEDED, job["error"]
    assert job["result"]["notes"] == payload["notes"]

"""Asking across every video of the clip index (no video given), on Ray with the real offline
embedder (OCR on): three generated videos, one of which shows the words asked about."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from typer.testing import CliRunner

from tests.videos import make_scene_video
from vidsift.core.config import load_config
from vidsift.core.errors import ClipIndexError
from vidsift.pipeline.cli import app
from vidsift.pipeline.flows.ask import Asker

pytestmark = pytest.mark.slow

WORDS = "QUARTERLY BUDGET REVIEW"
BUDGET = 1024


def _text_card(path):
    image = Image.new("RGB", (320, 240), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=34)
    for row, word in enumerate(WORDS.split()):
        draw.text((20, 30 + row * 60), word, fill="black", font=font)
    image.save(path)
    return path


@pytest.fixture(scope="module")
def library(tmp_path_factory, ray_cluster):
    """bars.mp4 (smptebars, testsrc), slides.mp4 (red, the words' card at 5-10 s, blue),
    plain.mp4 (green, rgbtestsrc): 5 s scenes, indexed into root/index."""
    from vidsift.pipeline.flows.index import index_videos

    root = tmp_path_factory.mktemp("many")
    videos = root / "videos"
    videos.mkdir()
    make_scene_video(videos / "bars.mp4", ["smptebars", "testsrc"])
    make_scene_video(videos / "slides.mp4", ["color=c=red", _text_card(root / "card.png"),
                                             "color=c=blue"])
    make_scene_video(videos / "plain.mp4", ["color=c=green", "rgbtestsrc"])
    summary = index_videos([videos], _config(root / "index"))
    assert len(summary.indexed) == 3, summary.failed
    return root


def _config(index_dir, *extra):
    return load_config("default", [f"index.dir={index_dir}", f"budget.tokens={BUDGET}",
                                   "vlm.model=none", "vlm.device=cpu", "vlm.dtype=float32",
                                   *extra])


def test_the_video_showing_the_answer_leads_and_each_segment_is_decoded_from_its_own(
        library, tmp_path):
    videos = library / "videos"
    slides, bars, plain = (str((videos / n).resolve()) for n in
                           ("slides.mp4", "bars.mp4", "plain.mp4"))
    asker = Asker(_config(library / "index"))
    calls = []
    frames_at = asker.pool.frames_at

    def recording(path, timestamps, **kw):
        calls.append((path, tuple(timestamps), kw["size"]))
        return frames_at(path, timestamps, **kw)

    asker.pool.frames_at = recording
    try:
        shards = sum(asker.pool.shards_done)
        result = asker.ask(None, "quarterly budget review", thumbnails_dir=tmp_path / "thumbs")
        assert sum(asker.pool.shards_done) == shards  # the memories the index run stored
    finally:
        asker.close()
    assert result.evidence_only and result.video == "" and result.reused
    assert result.videos[0] == slides and set(result.videos) <= {slides, bars, plain}
    assert result.retrieved[0]["video"] == slides
    assert result.retrieved[0]["start"] == pytest.approx(5.0, abs=0.15)
    # One plan, one budget: exact counts, the total within it.
    assert result.tokens == sum(s["tokens"] for s in result.segments) <= BUDGET
    assert result.budget == BUDGET
    tokens_by_video = {}
    for seg in result.segments:
        tokens_by_video[seg["video"]] = tokens_by_video.get(seg["video"], 0) + seg["tokens"]
    assert max(tokens_by_video, key=tokens_by_video.get) == slides
    # The fine decode asked each segment's own file for its own frames at its planned size.
    assert sorted(calls) == sorted((s["video"], tuple(s["timestamps"]), (s["height"], s["width"]))
                                   for s in result.segments)
    # And the pixels are that file's: the card is white, the red scene red, the others neither.
    shown_card = False
    for seg in result.segments:
        pixels = np.asarray(Image.open(seg["thumbnail"]).convert("RGB"), dtype=np.float64)
        middle = seg["timestamps"][len(seg["timestamps"]) // 2]
        red, green, blue = pixels.reshape(-1, 3).mean(axis=0)
        if seg["video"] == slides and 5.0 <= middle < 10.0:
            assert min(red, green, blue) > 170  # the white card
            shown_card = True
        elif seg["video"] == slides and middle < 5.0:
            assert red > 150 and green < 80 and blue < 80
        else:
            assert min(red, green, blue) < 170
    assert shown_card


def test_cli_across_the_index_names_each_segments_video(library):
    outcome = CliRunner().invoke(app, [
        "ask", "quarterly budget review", "--index-dir", str(library / "index"),
        "--model", "none", "--budget", str(BUDGET), "--json"])
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.stdout)
    slides = str((library / "videos" / "slides.mp4").resolve())
    assert payload["video"] == "" and payload["videos"][0] == slides
    assert payload["tokens"] == sum(s["tokens"] for s in payload["segments"]) <= BUDGET
    assert {s["video"] for s in payload["segments"]} == set(payload["videos"])
    shown = CliRunner().invoke(app, [
        "ask", "quarterly budget review", "--index-dir", str(library / "index"),
        "--model", "none", "--budget", str(BUDGET)])
    assert shown.exit_code == 0, shown.output
    # Weaker videos still get a floor of the budget (their clips were among the best); the
    # evidence lines name each segment's video before its time.
    assert len(payload["videos"]) > 1
    assert "[1] slides.mp4 0:00:0" in shown.output


def test_the_tiny_vlm_answers_across_videos_and_citations_name_them(library, tiny_qwen_dir):
    asker = Asker(_config(library / "index", f"vlm.model={tiny_qwen_dir}",
                          "vlm.max_new_tokens=4"))
    try:
        result = asker.ask(None, "quarterly budget review")
    finally:
        asker.close()
    assert isinstance(result.answer, str)
    assert result.vlm["visual_tokens"] == result.tokens <= BUDGET  # the plan, exactly
    for citation in result.citations:
        segment = result.segments[citation["segment"] - 1]
        assert citation["video"] == segment["video"]


def test_no_index_and_an_empty_index_are_clear_errors(library, ray_cluster, tmp_path):
    missing = tmp_path / "nowhere"
    outcome = CliRunner().invoke(app, ["ask", "anything?", "--index-dir", str(missing),
                                       "--model", "none"])
    assert outcome.exit_code == 1 and "Traceback" not in outcome.output
    # rich wraps the long path anywhere: compare without whitespace
    assert f"{missing}:noclipindexhere" in "".join(outcome.output.split())
    # An index whose videos were all removed holds no clips to search.
    from vidsift.index.clip_index import ClipIndex

    emptied = tmp_path / "emptied"
    shutil.copytree(library / "index", emptied)
    cfg = _config(emptied)
    with ClipIndex(emptied, cfg.index, embedder=cfg.embed.space_id) as index:
        for video in index.videos():
            index.remove_video(video.content_hash)
    asker = Asker(cfg)
    try:
        with pytest.raises(ClipIndexError, match=f"{emptied}: the clip index holds no clips"):
            asker.ask(None, "anything?")
    finally:
        asker.close()

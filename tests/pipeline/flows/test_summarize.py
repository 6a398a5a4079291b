"""`vidsift summarize --model none` end to end on a real local Ray and the offline embedder (OCR
on): a video of three slides gets a chapter per slide, cut at the joins, titled with the slide's
words; a second summary reads the stored memory; the CLI prints it and refuses bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont
from typer.testing import CliRunner

from tests.ingest_pools import ingest_config, running_pool
from tests.videos import make_scene_video
from vidsift.core.errors import NotAVideoError
from vidsift.pipeline.cli import app
from vidsift.pipeline.flows.summarize import Summarizer

pytestmark = pytest.mark.slow

SLIDES = [("HARBOUR TOURS", "white"), ("MOUNTAIN HIKES", "yellow"), ("DESERT CAMPS", "lightblue")]
SCENE_S = 8.0
SETTINGS = ("embed.ocr=true", "summary.min_chapter_s=3", "summary.max_chapter_s=60")


def _slide(path: Path, words: str, colour: str) -> Path:
    image = Image.new("RGB", (320, 240), colour)
    draw, font = ImageDraw.Draw(image), ImageFont.load_default(size=34)
    for row, word in enumerate(words.split()):
        draw.text((20, 30 + row * 60), word, fill="black", font=font)
    image.save(path)
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("summary")


@pytest.fixture(scope="module")
def slides_video(root):
    cards = [_slide(root / f"{word}.png", word, colour) for word, colour in SLIDES]
    return make_scene_video(root / "slides.mp4", cards, seconds=SCENE_S)


@pytest.fixture(scope="module")
def cfg(root):
    return ingest_config(root, 5.0, *SETTINGS)


@pytest.fixture(scope="module")
def pool(ray_cluster, cfg):
    yield from running_pool(cfg)


def test_chapters_at_the_joins_titled_by_the_slides_then_read_from_memory(
        cfg, pool, slides_video, tmp_path):
    summarizer = Summarizer(cfg, pool=pool)
    result = summarizer.summarize(str(slides_video))
    chapters = result.chapters
    assert [c["start"] for c in chapters] == pytest.approx([0.0, SCENE_S, 2 * SCENE_S], abs=0.5)
    assert chapters[-1]["end"] == pytest.approx(3 * SCENE_S, abs=0.2)
    assert [c["title"] for c in chapters] == [word for word, _ in SLIDES]
    assert {c["evidence"]["source"] for c in chapters} == {"text"}
    for chapter in chapters:
        assert set(chapter) == {"start", "end", "title", "summary", "thumbnail", "evidence"}
        assert chapter["summary"] is None
        assert Path(chapter["thumbnail"]).read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    payload = result.to_dict()
    assert payload["summary"] is None and payload["extractive"]
    # no model: the longest chapters' most typical moments, said to be extractive
    assert len(payload["highlights"]) == 3 and payload["highlights_from"] == "extractive"
    for highlight, chapter in zip(payload["highlights"], chapters):
        assert chapter["start"] <= highlight["start"] < highlight["end"] <= chapter["end"]
        assert highlight["title"] == chapter["title"] and highlight["why"].startswith("extractive")
    assert payload["tokens"] == sum(c["evidence"]["tokens"] for c in chapters) > 0
    assert payload["duration"] == pytest.approx(3 * SCENE_S, abs=0.2)
    assert not result.reused

    shards_before = sum(pool.shards_done)
    again = summarizer.summarize(str(slides_video), thumbnails_dir=tmp_path / "thumbs")
    assert again.reused and sum(pool.shards_done) == shards_before  # no coarse pass
    assert [(c["start"], c["end"], c["title"]) for c in again.chapters] == [
        (c["start"], c["end"], c["title"]) for c in chapters]
    assert [c["thumbnail"] for c in again.chapters] == [
        str(tmp_path / "thumbs" / f"{n:02d}.jpg") for n in range(3)]


def test_a_count_and_a_short_video(cfg, pool, root):
    one = make_scene_video(root / "short.mp4", ["smptebars"], seconds=4)
    short = Summarizer(cfg, pool=pool).summarize(str(one))
    assert len(short.chapters) == 1  # shorter than two chapters' minimum
    two = ingest_config(root, 5.0, *SETTINGS, "summary.chapters=2")
    slides = Summarizer(two, pool=pool).summarize(str(root / "slides.mp4"))
    assert len(slides.chapters) == 2


def test_no_video_fails_by_name(cfg, tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    with pytest.raises(NotAVideoError, match="notes.mp4"):
        Summarizer(cfg).summarize(str(notes))  # before any pool starts


def test_cli_json_and_text(cfg, pool, slides_video, root):
    index = ["--index-dir", str(root / "index"), *(a for s in SETTINGS for a in ("--set", s)),
             "--set", "embed.ocr=true", "--set", "ingest.num_actors=2"]
    result = CliRunner().invoke(app, ["summarize", str(slides_video), "--model", "none",
                                      "--json", *index])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["reused_memory"] and payload["extractive"] and payload["model"] == "none"
    assert [c["title"] for c in payload["chapters"]] == [word for word, _ in SLIDES]
    text = CliRunner().invoke(app, ["summarize", str(slides_video), *index])
    assert text.exit_code == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith("3 chapters (extractive") and "(memory reused)" in lines[0]
    assert lines[2].startswith("  0:00:08-0:00:16  MOUNTAIN HIKES  [text]  ")


@pytest.mark.parametrize("arguments, message", [
    (["--chapters", "zero"], "error: --chapters 'zero': give a number of chapters (1 or more) or auto"),
    (["--format", "srt", "-o", "x.srt"], "error: --format srt: choose one of md | vtt | "
                                          "ffmetadata | youtube"),
    (["--format", "md"], "error: --format and --out go together: --format "
                         "md|vtt|ffmetadata|youtube -o FILE"),
    (["--reel", "reel.mkv"], "error: --reel reel.mkv: a reel is written as MP4: name it .mp4"),
    (["--model", "some/checkpoint"], "error: {video}: not a video (no decodable video stream) "
                                     "(not a media container: Invalid data found when "
                                     "processing input)"),
])
def test_cli_bad_input_is_one_line(tmp_path, arguments, message):
    video = tmp_path / "v.mp4"
    video.write_text("x")
    result = CliRunner().invoke(app, ["summarize", str(video), *arguments, "--index-dir",
                                      str(tmp_path / "index")])
    assert result.exit_code == 1 and result.stderr.splitlines() == [message.format(video=video)]

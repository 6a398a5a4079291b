"""End to end: generated videos -> `vidsift index` -> `vidsift search`, with the real offline
embedder (EfficientNet-Lite0 + OCR/labels bridge through MiniLM)."""

import json

import pytest
from PIL import Image, ImageDraw, ImageFont
from typer.testing import CliRunner

from tests.videos import make_scene_video
from vidsift.pipeline.cli import app

pytestmark = pytest.mark.slow

TEXT = "QUARTERLY BUDGET REVIEW"


def text_card(path):
    image = Image.new("RGB", (320, 240), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=34)
    for row, word in enumerate(TEXT.split()):
        draw.text((20, 30 + row * 60), word, fill="black", font=font)
    image.save(path)
    return path


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("library")
    card = text_card(root / "card.png")
    videos = root / "videos"
    (videos / "nested").mkdir(parents=True)
    make_scene_video(videos / "bars.mp4", ["smptebars", "testsrc"])
    make_scene_video(videos / "nested" / "slides.mp4", ["color=c=red", card, "color=c=blue"])
    make_scene_video(videos / "plain.mp4", ["color=c=green", "rgbtestsrc"])
    (videos / "broken.mp4").write_bytes(b"this is not a video")
    (videos / "notes.txt").write_text("not a video and not a video extension")
    return root


def invoke(*args):
    result = CliRunner().invoke(app, list(args))
    return result


@pytest.fixture(scope="module")
def indexed(library):
    index_dir = library / "index"
    result = invoke("index", str(library / "videos"), "--index-dir", str(index_dir), "--json")
    assert result.exit_code == 0, result.output
    return index_dir, json.loads(result.stdout)


def test_index_reports_every_video(indexed, library):
    _, summary = indexed
    videos = library / "videos"
    assert sorted(summary["indexed"]) == sorted(
        str(p.resolve()) for p in [videos / "bars.mp4", videos / "nested/slides.mp4", videos / "plain.mp4"])
    [failed] = summary["failed"]
    assert failed["path"].endswith("broken.mp4") and "broken.mp4" in failed["error"]
    # scene cuts every 5 s: bars 2 clips, slides 3, plain 2
    assert summary["clips"] == 7
    # The unreadable video is recorded beside the index for the next run to report.
    index_dir, _ = indexed
    [record] = [json.loads(line) for line in (index_dir / "failures.jsonl").read_text().splitlines()]
    assert record["video"].endswith("broken.mp4") and "broken.mp4" in record["error"]


def test_a_manifest_names_the_videos_and_memories_are_reused(indexed, library, tmp_path):
    # The index run left each video's memory beside the index; a manifest naming an indexed
    # video re-runs nothing for it.
    manifest = tmp_path / "list.jsonl"
    manifest.write_text(json.dumps({"path": str(library / "videos" / "plain.mp4")}) + "\n")
    index_dir, _ = indexed
    from vidsift.core.config import load_config
    from vidsift.core.media import content_hash
    from vidsift.index.memory import MemoryStore

    cfg = load_config("default", [f"index.dir={index_dir}"])
    assert MemoryStore(index_dir).has(content_hash(library / "videos" / "plain.mp4"), cfg.memory_key())
    result = invoke("index", str(manifest), "--index-dir", str(index_dir), "--json")
    assert json.loads(result.stdout)["skipped"] == [str((library / "videos" / "plain.mp4").resolve())]


def test_text_query_finds_the_one_clip_showing_it(indexed, library):
    index_dir, _ = indexed
    result = invoke("search", "quarterly budget review", "-k", "3", "--index-dir", str(index_dir), "--json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    top = hits[0]
    assert top["video"].endswith("nested/slides.mp4")
    assert top["start"] == pytest.approx(5.0, abs=0.15) and top["end"] == pytest.approx(10.0, abs=0.15)
    assert "QUARTERLY" in top["text"].upper()
    assert top["score"] > hits[1]["score"] + 0.1
    thumb = Image.open(top["thumbnail"])
    assert max(thumb.size) <= 256 and thumb.format == "JPEG"


def test_rerun_skips_indexed_videos_and_search_filters_by_video(indexed, library):
    index_dir, _ = indexed
    result = invoke("index", str(library / "videos" / "bars.mp4"), "--index-dir", str(index_dir), "--json")
    summary = json.loads(result.stdout)
    assert summary["indexed"] == [] and len(summary["skipped"]) == 1
    bars = str(library / "videos" / "bars.mp4")
    result = invoke("search", "quarterly budget review", "--video", bars, "--index-dir", str(index_dir), "--json")
    hits = json.loads(result.stdout)["hits"]
    assert len(hits) == 2 and {h["video"] for h in hits} == {str((library / "videos/bars.mp4").resolve())}


def test_search_table_shows_times(indexed):
    index_dir, _ = indexed
    result = invoke("search", "quarterly budget review", "-k", "1", "--index-dir", str(index_dir))
    assert result.exit_code == 0, result.output
    assert "0:00:05-0:00:10" in result.stdout and "…" not in result.stdout  # paths fold, never cut


def test_search_without_index_is_a_clear_error(tmp_path):
    result = invoke("search", "anything", "--index-dir", str(tmp_path / "none"))
    assert result.exit_code == 1
    assert "no clip index here" in " ".join(result.output.split())  # rich wraps long lines


def test_broken_entries_and_a_directory_fail_by_name_before_any_pool(tmp_path):
    """A folder's symlink-loop pair and dangling link are listed as failed (once silently left
    out), a directory named like a video given by name is a failure (once '0 indexed, 0
    failed'), and with nothing readable no pool starts: no ray_cluster here, a few ms."""
    import os

    folder = tmp_path / "videos"
    folder.mkdir()
    os.symlink(folder / "b.mp4", folder / "a.mp4")
    os.symlink(folder / "a.mp4", folder / "b.mp4")
    os.symlink(folder / "gone.mp4", folder / "dangling.mp4")
    (folder / "empty.mp4").write_bytes(b"")
    (tmp_path / "clip.mp4").mkdir()
    result = invoke("index", str(folder), str(tmp_path / "clip.mp4"),
                    "--index-dir", str(tmp_path / "index"), "--json")
    assert result.exit_code == 1  # nothing indexed
    summary = json.loads(result.stdout)
    loop = "symlink loop (too many levels of symbolic links)"
    assert summary["failed"] == [
        {"path": str(folder / "a.mp4"), "error": f"{folder / 'a.mp4'}: {loop}"},
        {"path": str(folder / "b.mp4"), "error": f"{folder / 'b.mp4'}: {loop}"},
        {"path": str(folder / "dangling.mp4"),
         "error": f"{folder / 'dangling.mp4'}: file not found (a dangling symlink to {folder / 'gone.mp4'})"},
        {"path": str(folder / "empty.mp4"), "error": f"{folder / 'empty.mp4'}: file is empty"},
        {"path": str(tmp_path / "clip.mp4"),
         "error": f"{tmp_path / 'clip.mp4'}: not a regular file (a directory with no videos in it: none named .avi, .flv, .m2ts, .m4v, .mkv, .mov, .mp4, .mpeg, .mpg, .ts, .webm, .wmv)"},
    ]
    assert summary["indexed"] == [] and summary["wall_s"] < 3.0

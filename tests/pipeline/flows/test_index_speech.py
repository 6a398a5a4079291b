"""Speech in the clip index's text space: a fact that is only said (a subtitle track, a sidecar
file), never shown, is found by `vidsift search`; with speech off it is not in the index."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from tests.speech_videos import srt
from tests.videos import make_scene_video, run_ffmpeg
from vidsift.pipeline.cli import app

pytestmark = pytest.mark.slow

SAID = "The vault code is seven four two nine"


def invoke(*args):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def spoken_library(tmp_path_factory):
    root = tmp_path_factory.mktemp("spoken")
    videos = root / "videos"
    videos.mkdir()
    scenes = make_scene_video(root / "scenes.mp4", ["smptebars", "testsrc", "color=c=blue"])
    cues = root / "cues.srt"
    cues.write_text(srt([(6.0, 9.0, SAID), (11.0, 13.5, "Thank you for watching")]))
    run_ffmpeg("-i", str(scenes), "-i", str(cues), "-map", "0", "-map", "1", "-c:v", "copy",
               "-c:s", "mov_text", str(videos / "vault.mp4"))
    # the same pictures, something else said, from a sidecar file
    (videos / "weather.mp4").write_bytes(scenes.read_bytes())
    (videos / "weather.srt").write_text(srt([(1.0, 3.0, "Tomorrow brings rain over the hills")]))
    return root


def test_spoken_fact_is_found_by_text_search(spoken_library):
    """A video's subtitles are read by default (speech.mode subtitles): `vidsift index` with no
    speech flag, then `vidsift search` for a sentence only said finds its clip first (with
    speech off by default it found another)."""
    index_dir = spoken_library / "index"
    result = invoke("index", str(spoken_library / "videos"), "--index-dir", str(index_dir), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(summary["indexed"]) == 2 and summary["notes"] == []
    table = invoke("search", "vault code seven four two nine", "-k", "3", "--index-dir", str(index_dir))
    assert re.search(r"^│ 1 +│ vault\.mp4 +│ 0:00:05-0:00:10 ", table.stdout, re.MULTILINE), table.stdout
    found = invoke("search", "vault code seven four two nine", "-k", "3", "--index-dir", str(index_dir),
                   "--json")
    hits = json.loads(found.stdout)["hits"]
    top = hits[0]
    assert top["video"].endswith("vault.mp4")
    assert top["start"] == pytest.approx(5.0, abs=0.15) and top["end"] == pytest.approx(10.0, abs=0.15)
    assert top["text"].endswith(f" | speech: {SAID}")
    assert top["score"] > hits[1]["score"] + 0.1
    rain = json.loads(invoke("search", "rain over the hills", "-k", "1", "--index-dir", str(index_dir),
                             "--json").stdout)["hits"][0]
    assert rain["video"].endswith("weather.mp4") and rain["start"] == pytest.approx(0.0, abs=0.15)
    assert rain["text"].endswith(" | speech: Tomorrow brings rain over the hills")


def test_speech_off_leaves_it_out(spoken_library):
    index_dir = spoken_library / "index-off"
    result = invoke("index", str(spoken_library / "videos" / "vault.mp4"), "--index-dir", str(index_dir),
                    "--speech", "none", "--json")
    assert result.exit_code == 0, result.output
    hits = json.loads(invoke("search", "vault code seven four two nine", "--index-dir", str(index_dir),
                             "--json").stdout)["hits"]
    assert hits and not any("speech:" in h["text"] for h in hits)


def test_reindexing_with_other_speech_settings_redoes_the_clips_from_memory(spoken_library, monkeypatch):
    import sqlite3

    from vidsift.index.clip_index import ClipIndex
    from vidsift.index.store import NO_SPEECH

    index_dir, video = spoken_library / "index-redo", spoken_library / "videos" / "vault.mp4"

    def index(*options):
        result = invoke("index", str(video), "--index-dir", str(index_dir), "--json", *options)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def vault_hits():
        return json.loads(invoke("search", "vault code seven four two nine", "-k", "3", "--index-dir",
                                 str(index_dir), "--json").stdout)["hits"]

    first = index("--speech", "none")
    assert first["indexed"] == [str(video.resolve())] and first["reindexed"] == []
    # The index as a vidsift that did not record speech settings wrote it: read as made without.
    db = sqlite3.connect(index_dir / "meta.sqlite")
    db.execute("ALTER TABLE videos DROP COLUMN speech")
    db.close()
    assert not any("speech:" in h["text"] for h in vault_hits())

    def no_decoding(*args, **kwargs):
        raise AssertionError("re-indexing probed (to decode) a video whose memory is stored")

    monkeypatch.setattr("vidsift.core.probe.probe", no_decoding)
    spoken = index("--speech", "subtitles")
    assert spoken["indexed"] == spoken["reindexed"] == [str(video.resolve())] and spoken["skipped"] == []
    assert spoken["clips"] == first["clips"] and spoken["notes"] == []
    top = vault_hits()[0]
    assert top["video"].endswith("vault.mp4") and top["text"].endswith(f" | speech: {SAID}")
    assert top["start"] == pytest.approx(5.0, abs=0.15) and top["end"] == pytest.approx(10.0, abs=0.15)
    with ClipIndex(index_dir, readonly=True) as reader:
        [record] = reader.videos()
        assert record.clips == first["clips"] and record.speech not in ("", NO_SPEECH)
        assert reader.stats()["clips"] == first["clips"]
        assert sorted(p.name for p in (index_dir / "thumbs").rglob("*.jpg")) == [
            f"{reader.generation}-{n:05d}.jpg" for n in range(first["clips"])]  # the old ones went

    again = index("--speech", "subtitles")
    assert again["skipped"] == [str(video.resolve())] and again["indexed"] == []

    result = invoke("index", str(video), "--index-dir", str(index_dir), "--speech", "none")
    assert result.exit_code == 0, result.output
    assert "1 indexed (1 re-indexed for other speech settings" in " ".join(result.stdout.split())
    assert not any("speech:" in h["text"] for h in vault_hits())

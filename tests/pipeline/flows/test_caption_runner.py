"""Batch captioning on Ray Data with a tiny random Qwen2.5-VL: every clip captioned once, a corrupt
file recorded and skipped, a killed caption actor loses and duplicates nothing, a re-run redoes
nothing. Also the pure parts: manifests, clip tiling, frame sizes by the token arithmetic."""

from __future__ import annotations

import json
import os
import signal

import psutil
import pytest

from tests.videos import make_coded_video
from vidsift.pipeline import budget
from vidsift.core.config import load_config
from vidsift.core.errors import ConfigError
from vidsift.core.media import find_videos
from vidsift.pipeline.flows.caption import (
    CaptionOutput,
    add_captions_to_index,
    clip_frame_size,
    clip_timestamps,
    fixed_clips,
    run_caption,
    video_key,
)
from vidsift.pipeline.flows.index import search_clips

VIDEOS = 5
CLIPS_PER_VIDEO = 2  # 6 s videos cut into 3 s clips


def test_fixed_clips_tile_the_video_exactly():
    assert fixed_clips(0.0, 6.0, 3.0) == [(0.0, 3.0), (3.0, 6.0)]
    bounds = [t for clip in fixed_clips(0.04, 7.04, 3.0) for t in clip]
    assert bounds == pytest.approx([0.04, 2.3733, 2.3733, 4.7067, 4.7067, 7.04], abs=1e-4)
    assert fixed_clips(0.0, 2.0, 8.0) == [(0.0, 2.0)]
    assert clip_timestamps(0.0, 4.0, 4) == (0.5, 1.5, 2.5, 3.5)


def test_clip_frame_size_follows_the_token_arithmetic():
    # 320x240, 4 frames, 1024 tokens: the natural size (252x308) fits: 2 temporal x 9 x 11.
    assert clip_frame_size(240, 320, 4, 1024) == (252, 308)
    assert budget.tokens_for(4, 252, 308) == 198
    # 2 frames within 64 tokens: shrunk to 168x252 = 6 x 9 = 54 tokens (<= 64).
    assert clip_frame_size(240, 320, 2, 64) == (168, 252)
    assert budget.tokens_for(2, 168, 252) == 54


def test_manifests_jsonl_and_csv(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.MKV").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert find_videos([tmp_path]) == [str(tmp_path / "a.mp4"), str(tmp_path / "sub" / "b.MKV")]
    (tmp_path / "m.jsonl").write_text('"a.mp4"\n{"path": "sub/b.MKV"}\n\n')
    assert find_videos([tmp_path / "m.jsonl"]) == find_videos([tmp_path])
    (tmp_path / "m.csv").write_text("video,lang\na.mp4,en\n/abs/c.mp4,fr\n")
    assert find_videos([tmp_path / "m.csv"]) == [str(tmp_path / "a.mp4"), "/abs/c.mp4"]
    (tmp_path / "bad.csv").write_text("file\na.mp4\n")
    with pytest.raises(ConfigError, match="'path' or 'video' column"):
        find_videos([tmp_path / "bad.csv"])
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    with pytest.raises(ConfigError, match="bad.jsonl:1: invalid JSON"):
        find_videos([tmp_path / "bad.jsonl"])


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("caption_videos")
    for number in range(VIDEOS):  # distinct GOPs: distinct files (the index dedups content)
        make_coded_video(folder / f"v{number}.mp4", n_frames=60, fps=10, size=(160, 120),
                         gop=5 + number)
    (folder / "broken.mp4").write_bytes(os.urandom(4096))
    return folder


def _caption_config(model_dir):
    return load_config("default", [
        f"vlm.model={model_dir}", "vlm.max_new_tokens=8", "vlm.device=cpu", "vlm.dtype=float32",
        "caption.clips=fixed", "caption.clip_s=3", "caption.frames_per_clip=2",
        "caption.tokens_per_clip=32", "caption.max_new_tokens=4",
        "pool.max_batch_size=1", "pool.num_actors=1", "pool.num_cpus_per_actor=0.5",
    ])


def _caption_actor_pids() -> set[int]:
    pids = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cmdline.startswith("ray::") and "CaptionActor" in cmdline:
            pids.add(proc.info["pid"])
    return pids


def test_caption_folder_kill_an_actor_then_rerun(ray_cluster, video_folder, tiny_qwen_dir,
                                                 tmp_path):
    cfg = _caption_config(tiny_qwen_dir)
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_actor_after_first_video(report, video, status):
        if status == "done" and not killed:
            pids = _caption_actor_pids()
            assert pids, "no caption actor process found"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            killed.extend(pids)

    report = run_caption(video_folder, out, cfg, progress=kill_actor_after_first_video)
    assert killed
    assert (report.videos, report.captioned, report.failed) == (VIDEOS + 1, VIDEOS, 1)
    assert report.clips == VIDEOS * CLIPS_PER_VIDEO

    table = CaptionOutput(out).read_rows()
    assert table.column_names == ["video", "clip", "start", "end", "caption", "model", "tokens"]
    rows = table.to_pylist()
    keys = [(r["video"], r["clip"]) for r in rows]
    expected = {(str(video_folder / f"v{n}.mp4"), c) for n in range(VIDEOS)
                for c in range(CLIPS_PER_VIDEO)}
    assert len(keys) == len(set(keys)) and set(keys) == expected  # none lost, none duplicated
    for row in rows:
        assert row["start"] == pytest.approx(3.0 * row["clip"], abs=1e-6)
        assert row["end"] == pytest.approx(3.0 * row["clip"] + 3.0, abs=1e-6)
        assert row["model"]
        assert row["tokens"] == budget.tokens_for(2, *clip_frame_size(120, 160, 2, 32)) == 24
        assert isinstance(row["caption"], str)

    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["video"] for f in failures] == [str(video_folder / "broken.mp4")]
    assert "broken.mp4" in failures[0]["error"]

    key = video_key(str(video_folder / "v0.mp4"))
    srt = (out / "subtitles" / f"{key}.srt").read_text()
    assert srt.startswith("1\n00:00:00,000 --> 00:00:03,000\n")
    assert "2\n00:00:03,000 --> 00:00:06,000\n" in srt
    assert (out / "subtitles" / f"{key}.vtt").read_text().startswith(
        "WEBVTT\n\n00:00:00.000 --> 00:00:03.000\n")

    # Re-run: every finished video is skipped, its file untouched; only the failure is retried.
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "captions").glob("*.parquet")}
    again = run_caption(video_folder, out, cfg)
    assert (again.skipped, again.captioned, again.failed) == (VIDEOS, 0, 1)
    assert {p: p.stat().st_mtime_ns for p in (out / "captions").glob("*.parquet")} == mtimes
    assert CaptionOutput(out).read_rows().num_rows == VIDEOS * CLIPS_PER_VIDEO
    assert len((out / "failures.jsonl").read_text().splitlines()) == 1

    # Captions fed to the clip index's text space: a caption finds its own clip.
    index_cfg = cfg.model_copy(deep=True)
    index_cfg.index.dir = str(tmp_path / "index")
    index_cfg.embed.ocr = False
    assert add_captions_to_index(out, index_cfg) == {"added": VIDEOS, "skipped": 0,
                                                     "clips": VIDEOS * CLIPS_PER_VIDEO}
    target = max(rows, key=lambda r: len(r["caption"]))
    hit = search_clips(target["caption"], index_cfg, k=1)[0]
    assert hit.text == target["caption"] and hit.video == target["video"]
    assert add_captions_to_index(out, index_cfg)["skipped"] == VIDEOS


def test_caption_without_a_model_is_a_config_error(video_folder, tmp_path):
    with pytest.raises(ConfigError, match="caption needs a VLM"):
        run_caption(video_folder, tmp_path / "out", load_config("default"))

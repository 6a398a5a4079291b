"""Batch captioning on Ray Data with a tiny random Qwen2.5-VL: every clip captioned once, a corrupt
file recorded and skipped, a killed caption actor loses and duplicates nothing, a re-run redoes
nothing; a video the ingest chain already read is captioned on its memory's scene clips."""

from __future__ import annotations

import json
import os
import signal

import psutil
import pytest

from tests.videos import make_coded_video, make_scene_cut_video
from vidsift.core import vision
from vidsift.core.config import load_config
from vidsift.core.errors import ConfigError
from vidsift.core.media import content_hash, video_key
from vidsift.index.clip_index import ClipIndex
from vidsift.index.memory import MemoryStore
from vidsift.pipeline.plan.clips import frames_in_clips, middle_frame
from vidsift.pipeline.flows.caption import (
    CAPTION_HASH_SUFFIX,
    CaptionOutput,
    add_captions_to_index,
    clip_frame_size,
    run_caption,
)
from vidsift.pipeline.flows.index import search_clips
from vidsift.pipeline.flows.ingest import cut_clips, ingest_one

VIDEOS = 5
CLIPS_PER_VIDEO = 2  # 6 s videos cut into 3 s clips


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("caption_videos")
    for number in range(VIDEOS):  # distinct GOPs: distinct files (the index dedups content)
        make_coded_video(folder / f"v{number}.mp4", n_frames=60, fps=10, size=(160, 120),
                         gop=5 + number)
    (folder / "broken.mp4").write_bytes(os.urandom(4096))
    return folder


def _caption_config(model_dir, index_dir, *extra):
    return load_config("default", [
        f"index.dir={index_dir}", f"vlm.model={model_dir}", "vlm.max_new_tokens=8", "vlm.device=cpu", "vlm.dtype=float32",
        "caption.clips=fixed", "caption.clip_s=3", "caption.frames_per_clip=2",
        "caption.tokens_per_clip=32", "caption.max_new_tokens=4",
        "pool.max_batch_size=1", "pool.num_actors=1", "pool.num_cpus_per_actor=0.5", *extra,
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
    cfg = _caption_config(tiny_qwen_dir, tmp_path / "memories")
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
    assert table.column_names == ["video", "clip", "start", "end", "caption", "model", "tokens",
                                  "speech"]
    rows = table.to_pylist()
    keys = [(r["video"], r["clip"]) for r in rows]
    expected = {(str(video_folder / f"v{n}.mp4"), c) for n in range(VIDEOS)
                for c in range(CLIPS_PER_VIDEO)}
    assert len(keys) == len(set(keys)) and set(keys) == expected  # none lost, none duplicated
    for row in rows:
        assert row["start"] == pytest.approx(3.0 * row["clip"], abs=1e-6)
        assert row["end"] == pytest.approx(3.0 * row["clip"] + 3.0, abs=1e-6)
        assert row["model"]
        assert row["tokens"] == vision.tokens_for(2, *clip_frame_size(120, 160, 2, 32)) == 24
        assert isinstance(row["caption"], str) and row["speech"] == ""  # no subtitles said

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
        run_caption(video_folder, tmp_path / "out",
                    load_config("default", [f"index.dir={tmp_path / 'index'}"]))


def test_an_ingested_video_is_captioned_on_its_memory(ray_cluster, tiny_qwen_dir, tmp_path,
                                                      monkeypatch):
    from vidsift.workers.ingest import IngestPool

    video = str(make_scene_cut_video(tmp_path / "scenes.mp4", cut_frames=(60, 150)))
    # max_clip_s=4 splits the 10 s video into several clips whatever cuts the embedder sees.
    cfg = _caption_config(tiny_qwen_dir, tmp_path / "index", "caption.clips=scenes",
                          "embed.ocr=false", "index.max_clip_s=4", "ingest.num_actors=1")
    out = tmp_path / "out"
    pool = IngestPool(cfg)
    try:
        memory = ingest_one(video, cfg, pool, MemoryStore(cfg.index.dir))  # as ask or index do
        shards = sum(pool.shards_done)
        report = run_caption(video, out, cfg, pool=pool)
        assert sum(pool.shards_done) == shards  # the memory was read: no shard ran again
    finally:
        pool.close()
    spans = cut_clips(memory, cfg).spans
    assert len(spans) > 1
    assert (report.captioned, report.failed, report.clips) == (1, 0, len(spans))
    rows = CaptionOutput(out).read_rows().to_pylist()
    assert [(r["start"], r["end"]) for r in rows] == [pytest.approx(span) for span in spans]

    # Fed to the index from the same memory: thumbnails are its JPEGs, nothing is decoded.
    def no_decoding(*args, **kwargs):
        raise AssertionError("add_captions_to_index decoded a video that has a memory")

    monkeypatch.setattr("vidsift.workers.decode.get_decoder", no_decoding)
    assert add_captions_to_index(out, cfg) == {"added": 1, "skipped": 0, "clips": len(spans)}
    members = frames_in_clips(memory.frames.times, spans)
    digest = content_hash(video) + CAPTION_HASH_SUFFIX
    with ClipIndex(cfg.index.dir, cfg.index, readonly=True, embedder=cfg.embed.space_id) as index:
        for number, (idx, span) in enumerate(zip(members, spans)):
            thumbnail, _ = index.thumbnail_path(digest, number)
            middle = middle_frame(memory.frames.times, idx, span)
            assert thumbnail.read_bytes() == memory.frames.thumbnails[middle]

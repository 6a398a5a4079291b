"""The shared ingest chain on a real local Ray: sharded ingest equals the whole-video coarse pass,
memories are stored once and reused, never served stale, and one bad video fails alone."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.ingest_pools import ingest_config, running_pool
from tests.videos import make_coded_video
from vidsift.core.errors import CorruptVideoError, DecodeTimeoutError, NotAVideoError
from vidsift.core.media import content_hash
from vidsift.index.memory import MemoryStore
from vidsift.pipeline.flows.ingest import cut_clips, ingest_one, ingest_videos
from vidsift.workers.decode import DECODERS, get_decoder
from vidsift.workers.ingest import IngestPool


def _cfg(tmp_path, *extra):
    # 0.05 min = 3 s shards: the 10 s coded video (keyframe every second) gets 4 shards.
    return ingest_config(tmp_path, 0.05, *extra)


@pytest.fixture(scope="module")
def pool(ray_cluster, tmp_path_factory):
    yield from running_pool(_cfg(tmp_path_factory.mktemp("pool")))


def test_sharded_ingest_equals_the_whole_coarse_pass(pool, coded_video, tmp_path):
    cfg = _cfg(tmp_path)
    events = []
    memory = ingest_one(str(coded_video), cfg, pool, MemoryStore(cfg.index.dir), events.append)
    whole = get_decoder("pyav").coarse(str(coded_video), cfg.decode.coarse_max_side,
                                       cfg.selection.max_coarse_gap_s, cfg.selection.coarse_fps)
    np.testing.assert_array_equal(memory.frames.times, [f.pts for f in whole])
    assert len(memory.frames.thumbnails) == len(memory.frames.embeddings.descriptions) == len(whole)
    assert memory.frames.embeddings.visual.shape[0] == len(whole)
    # Progress counted every shard of the video, and both actors took part.
    assert events[-1].shards_done == events[-1].shards_total == 4
    assert sum(1 for n in pool.shards_done if n) == 2
    # The shard results are the embeddings of exactly those frames.
    from vidsift.workers.embed import get_embedder

    expected = get_embedder(cfg.embed).encode_frames([f.image for f in whole])
    np.testing.assert_allclose(memory.frames.embeddings.visual, expected.visual, atol=1e-5)
    assert memory.info.frame_count == 250 and memory.embedder == "offline"


def test_second_ingest_reads_the_memory(pool, coded_video, tmp_path):
    cfg = _cfg(tmp_path)
    store = MemoryStore(cfg.index.dir)
    first = ingest_one(str(coded_video), cfg, pool, store)
    done_before = sum(pool.shards_done)
    events = []
    again = ingest_one(str(coded_video), cfg, pool, store, events.append)
    assert sum(pool.shards_done) == done_before  # no shard ran
    assert [e.reused for e in events] == [True]
    np.testing.assert_array_equal(again.frames.times, first.frames.times)
    np.testing.assert_array_equal(again.frames.embeddings.text, first.frames.embeddings.text)
    assert list(again.frames.thumbnails) == list(first.frames.thumbnails)
    assert again.info == first.info
    assert cut_clips(again, cfg).spans == cut_clips(first, cfg).spans
    # The same content at another path is the same memory.
    copy = tmp_path / "copy.mp4"
    shutil.copy(coded_video, copy)
    events.clear()
    ingest_one(str(copy), cfg, pool, store, events.append)
    assert [e.reused for e in events] == [True]


def test_changed_settings_or_content_are_never_served_a_stale_memory(pool, media_dir, tmp_path):
    cfg = _cfg(tmp_path)
    store = MemoryStore(cfg.index.dir)
    video = make_coded_video(tmp_path / "v.mp4", n_frames=100, gop=25)
    ingest_one(str(video), cfg, pool, store)
    sparser = _cfg(tmp_path, "selection.max_coarse_gap_s=5")
    assert sparser.memory_key() != cfg.memory_key()
    events = []
    other = ingest_one(str(video), sparser, pool, store, events.append)
    assert not events[0].reused
    assert other.key == sparser.memory_key()
    # The pool's actors were built with cfg's settings; the memory reports what made it, and a
    # pool built with other settings is what a changed config gets (Asker / start_pool).
    make_coded_video(video, n_frames=60, gop=25)  # new content at the same path
    events.clear()
    changed = ingest_one(str(video), cfg, pool, store, events.append)
    assert not events[0].reused
    assert changed.content_hash == content_hash(video) and changed.info.frame_count == 60


def test_a_bad_video_fails_alone(pool, coded_video, text_file_video, truncated_video, tmp_path):
    cfg = _cfg(tmp_path)
    outcomes = dict(ingest_videos(
        [str(text_file_video), str(coded_video), str(truncated_video), str(tmp_path / "gone.mp4")],
        cfg, pool, MemoryStore(cfg.index.dir)))
    assert isinstance(outcomes[str(text_file_video)], NotAVideoError)
    assert isinstance(outcomes[str(truncated_video)], CorruptVideoError)
    assert str(truncated_video) in str(outcomes[str(truncated_video)])
    assert "file not found" in str(outcomes[str(tmp_path / "gone.mp4")])
    assert outcomes[str(coded_video)].info.frame_count == 250
    # Nothing is stored for a failed video.
    assert not MemoryStore(cfg.index.dir).has(content_hash(truncated_video), cfg.memory_key())


def _hanging_shards(**kwargs):
    """A pyav decoder whose coarse pass hangs on the shard that starts at 3 s."""
    import time

    from vidsift.workers.decode.pyav_backend import PyAVDecoder

    class HangingOnShard(PyAVDecoder):
        name = "hanging-shard"

        def coarse(self, path, *args, start=None, end=None):
            while start is not None and 2.9 < start < 3.1:
                time.sleep(0.05)
            return super().coarse(path, *args, start=start, end=end)

    return HangingOnShard(**kwargs)


def test_a_hanging_shard_times_out_alone_and_the_pool_goes_on(ray_cluster, coded_video,
                                                              tmp_path, monkeypatch):
    monkeypatch.setitem(DECODERS, "hanging-shard", _hanging_shards)
    cfg = _cfg(tmp_path, "ingest.shard_timeout_s=3", "ingest.max_retries=1")
    cfg.decode = cfg.decode.model_copy(update={"backend": "hanging-shard"})  # test-only entry
    hanging = IngestPool(cfg)
    try:
        with pytest.raises(DecodeTimeoutError, match=r"shard \[3\.0, 6\.0\) s took over 3 s, 2 times"):
            ingest_one(str(coded_video), cfg, hanging, MemoryStore(cfg.index.dir))
        # The replaced actors serve the next call.
        assert hanging.probe(coded_video).frame_count == 250
    finally:
        hanging.close()


def test_a_stream_copy_cut_ingests(pool, copy_cut_video, tmp_path):
    cfg = _cfg(tmp_path)
    memory = ingest_one(str(copy_cut_video), cfg, pool, MemoryStore(cfg.index.dir))
    assert memory.info.start_time == pytest.approx(0.0, abs=0.05)
    assert len(memory.frames) > 0

"""The per-video memory store: a round trip keeps every field, keys keep settings apart, a
damaged file reads as absent (never a crash, never half a memory)."""

from __future__ import annotations

import numpy as np

from vidsift.core.types import CoarseFrames, FrameEmbeddings, VideoInfo, VideoMemory
from vidsift.index.memory import MemoryStore


def _memory(key="k1", n=5) -> VideoMemory:
    rng = np.random.default_rng(0)
    info = VideoInfo(path="/v/a.mp4", duration=10.0, start_time=0.0, avg_fps=25.0, real_fps=25.0,
                     frame_count=250, width=320, height=240, rotation=0, codec="h264",
                     is_vfr=False, keyframe_times=(0.0, 1.0, 2.0), has_audio=True, size_bytes=123)
    frames = CoarseFrames(
        times=np.linspace(0, 9, n),
        embeddings=FrameEmbeddings(visual=rng.random((n, 8), dtype=np.float32),
                                   text=rng.random((n, 4), dtype=np.float32),
                                   descriptions=[f"frame {i} ünïcode" for i in range(n)]),
        thumbnails=[bytes([i]) * (i + 3) for i in range(n)],
    )
    return VideoMemory(content_hash="ab" * 32, key=key, embedder="offline", info=info, frames=frames)


def test_round_trip_keeps_every_field(tmp_path):
    store = MemoryStore(tmp_path)
    original = _memory()
    stored = store.put(original)
    path = store.path(original.content_hash, "k1")
    assert path.parent.parent.name == "ab" and path.name == "k1.npz" and path.is_file()
    assert list(stored.frames.thumbnails) == original.frames.thumbnails
    back = store.get(original.content_hash, "k1")
    assert back.info == original.info
    np.testing.assert_array_equal(back.frames.times, original.frames.times)
    np.testing.assert_array_equal(back.frames.embeddings.visual, original.frames.embeddings.visual)
    np.testing.assert_array_equal(back.frames.embeddings.text, original.frames.embeddings.text)
    assert back.frames.embeddings.descriptions == original.frames.embeddings.descriptions
    assert list(back.frames.thumbnails) == original.frames.thumbnails
    assert back.frames.thumbnails[-1] == original.frames.thumbnails[-1]
    assert (back.embedder, back.key, back.content_hash) == ("offline", "k1", original.content_hash)


def test_keys_keep_settings_apart(tmp_path):
    store = MemoryStore(tmp_path)
    store.put(_memory("k1"))
    assert store.has("ab" * 32, "k1") and not store.has("ab" * 32, "k2")
    assert store.get("ab" * 32, "k2") is None
    assert store.get("cd" * 32, "k1") is None


def test_a_damaged_memory_reads_as_absent(tmp_path):
    store = MemoryStore(tmp_path)
    store.put(_memory())
    path = store.path("ab" * 32, "k1")
    path.write_bytes(path.read_bytes()[:100])
    assert store.get("ab" * 32, "k1") is None
    store.put(_memory())  # ingest writes it anew
    assert store.get("ab" * 32, "k1") is not None
    assert not [p for p in path.parent.iterdir() if ".tmp" in p.name]


def test_text_vectors_are_kept_per_embedder_space_and_a_damaged_file_reads_as_none(tmp_path):
    store = MemoryStore(tmp_path)
    vectors = {"SECRET WORD: ORCHID": np.array([0.6, 0.8], np.float32),
               "EXIT ünïcode": np.array([1.0, 0.0], np.float32)}
    path = store.put_text_vectors("ab" * 32, "offline-minilm", vectors)
    assert path.parent == store.path("ab" * 32, "k1").parent and path.name.startswith("texts-")
    back = store.get_text_vectors("ab" * 32, "offline-minilm")
    assert list(back) == list(vectors)
    for text, vector in vectors.items():
        np.testing.assert_array_equal(back[text], vector)
    assert store.get_text_vectors("ab" * 32, "siglip") == {}
    assert store.get_text_vectors("cd" * 32, "offline-minilm") == {}
    path.write_bytes(path.read_bytes()[:40])
    assert store.get_text_vectors("ab" * 32, "offline-minilm") == {}


def test_vectors_are_memory_mapped_read_only_and_checked_against_the_memory(tmp_path):
    store = MemoryStore(tmp_path)
    store.put(_memory(n=5))
    back = store.get("ab" * 32, "k1")
    assert isinstance(back.frames.embeddings.visual, np.memmap)
    assert not back.frames.embeddings.visual.flags.writeable
    np.save(store.vectors_path("ab" * 32, "k1", "text"), np.zeros((4, 4), np.float32))
    assert store.get("ab" * 32, "k1") is None  # 4 rows for 5 frames: absent, not wrong


def test_thumbnails_that_do_not_match_their_memory_read_as_absent(tmp_path):
    store = MemoryStore(tmp_path)
    store.put(_memory())
    store.thumbnails_path("ab" * 32, "k1").write_bytes(b"short")
    assert store.get("ab" * 32, "k1") is None
    store.thumbnails_path("ab" * 32, "k1").unlink()
    assert store.get("ab" * 32, "k1") is None


def test_staged_shards_land_in_frame_order_whatever_order_they_finish(tmp_path):
    store = MemoryStore(tmp_path)
    memory = _memory(n=5)
    frames = memory.frames

    def shard(lo, hi) -> CoarseFrames:
        return CoarseFrames(
            times=frames.times[lo:hi],
            embeddings=FrameEmbeddings(frames.embeddings.visual[lo:hi],
                                       frames.embeddings.text[lo:hi],
                                       frames.embeddings.descriptions[lo:hi]),
            thumbnails=frames.thumbnails[lo:hi],
        )

    stage = store.stage(memory.content_hash, memory.key)
    stage.add(2, shard(3, 5))  # the last shard lands first
    stage.add(0, shard(0, 1))
    stage.add(1, shard(1, 3))
    stored = store.put_staged(memory.content_hash, memory.key, "offline", memory.info, stage,
                              [0, 1, 2])
    stage.discard()
    for back in (stored, store.get(memory.content_hash, memory.key)):
        np.testing.assert_array_equal(back.frames.times, frames.times)
        np.testing.assert_array_equal(back.frames.embeddings.visual, frames.embeddings.visual)
        np.testing.assert_array_equal(back.frames.embeddings.text, frames.embeddings.text)
        assert back.frames.embeddings.descriptions == frames.embeddings.descriptions
        assert list(back.frames.thumbnails) == frames.thumbnails
    assert sorted(p.name for p in store.path(memory.content_hash, "k1").parent.iterdir()) == [
        "k1.jpg", "k1.npz", "k1.text.npy", "k1.visual.npy"]  # no stage file left

import sqlite3

import numpy as np

from vidsift.index.store import NO_SPEECH, MetadataStore, NewClip


def clips(n, prefix="t"):
    return [NewClip(float(i), float(i + 1), f"thumbs/{prefix}{i}.jpg", f"clip {i}") for i in range(n)]


def vectors(n, dim, seed):
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def test_add_and_read_back_clips_with_vectors(tmp_path):
    store = MetadataStore(tmp_path / "m.sqlite")
    vis, txt = vectors(3, 8, 0), vectors(3, 4, 1)
    ids = store.add_video("/v/a.mp4", "hash-a", 3.0, clips(3), vis, txt, gen=1)
    assert ids == sorted(ids) and len(set(ids)) == 3
    records, v, t = store.clips(1, [ids[2], ids[0], 999])
    assert [r.id for r in records] == [ids[2], ids[0]]
    assert records[0].start == 2.0 and records[0].end == 3.0 and records[0].text == "clip 2"
    assert records[0].video_path == "/v/a.mp4" and records[0].content_hash == "hash-a"
    np.testing.assert_array_equal(v, vis[[2, 0]])
    np.testing.assert_array_equal(t, txt[[2, 0]])
    [video] = store.find_video(1, content_hash="hash-a")
    assert video.clips == 3 and video.duration == 3.0


def test_generations_hide_uncommitted_rows_and_recover_drops_them(tmp_path):
    store = MetadataStore(tmp_path / "m.sqlite")
    store.add_video("/v/a.mp4", "a", 2.0, clips(2), vectors(2, 8, 0), vectors(2, 4, 0), gen=1)
    # generation 2 (not committed): add b, remove a
    store.add_video("/v/b.mp4", "b", 1.0, clips(1), vectors(1, 8, 1), vectors(1, 4, 1), gen=2)
    [a] = store.find_video(2, content_hash="a")
    store.mark_removed(a.id, gen=2)
    assert [v.content_hash for v in store.videos(1)] == ["a"]  # readers at 1 see the old view
    assert [v.content_hash for v in store.videos(2)] == ["b"]
    changed, thumbs = store.recover(committed_gen=1)
    # dropped: video b and its clip; restored: video a and its two clips
    assert changed == 5 and thumbs == ["thumbs/t0.jpg"]
    assert [v.content_hash for v in store.videos(2)] == ["a"]
    assert store.clip_count(2) == 2


def test_purge_deletes_removed_rows_and_returns_thumbnails(tmp_path):
    store = MetadataStore(tmp_path / "m.sqlite")
    store.add_video("/v/a.mp4", "a", 2.0, clips(2, "a"), vectors(2, 8, 0), vectors(2, 4, 0), gen=1)
    [a] = store.find_video(1, content_hash="a")
    store.mark_removed(a.id, gen=2)
    assert sorted(store.purge(2)) == ["thumbs/a0.jpg", "thumbs/a1.jpg"]
    # the same content can come back after removal
    store.add_video("/v/a.mp4", "a", 2.0, clips(1), vectors(1, 8, 0), vectors(1, 4, 0), gen=3)
    assert store.clip_count(3) == 1


def test_iter_vectors_in_batches(tmp_path):
    store = MetadataStore(tmp_path / "m.sqlite")
    vis = vectors(7, 8, 0)
    ids = store.add_video("/v/a.mp4", "a", 7.0, clips(7), vis, vectors(7, 4, 0), gen=1)
    batches = list(store.iter_vectors(1, "visual", batch=3))
    assert [len(b[0]) for b in batches] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), ids)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), vis)


def test_reopen_keeps_rows(tmp_path):
    store = MetadataStore(tmp_path / "m.sqlite")
    store.add_video("/v/a.mp4", "a", 2.0, clips(2), vectors(2, 8, 0), vectors(2, 4, 0), gen=1)
    store.close()
    again = MetadataStore(tmp_path / "m.sqlite")
    assert again.clip_count(1) == 2


def test_videos_record_their_speech_settings(tmp_path):
    store = MetadataStore(tmp_path / "m.sqlite")
    store.add_video("/v/a.mp4", "a", 2.0, clips(2), vectors(2, 8, 0), vectors(2, 4, 0), gen=1)
    store.add_video("/v/b.mp4", "b", 1.0, clips(1), vectors(1, 8, 1), vectors(1, 4, 1), gen=1,
                    speech="0123abcd")
    assert [(v.content_hash, v.speech) for v in store.videos(1)] == [("a", NO_SPEECH), ("b", "0123abcd")]


OLD_VIDEOS_TABLE = """CREATE TABLE videos (
    id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, content_hash TEXT NOT NULL,
    duration REAL NOT NULL, added REAL NOT NULL, gen_added INTEGER NOT NULL, gen_removed INTEGER)"""


def old_store(path):
    """A metadata file as written before videos recorded their speech settings: one video, 2 clips."""
    db = sqlite3.connect(path)
    db.execute(OLD_VIDEOS_TABLE)
    db.commit()
    db.close()
    store = MetadataStore(path, readonly=True)  # the rest of the schema; videos left as it is
    store._db.execute("INSERT INTO videos(path, content_hash, duration, added, gen_added)"
                      " VALUES ('/v/a.mp4', 'a', 2.0, 0, 1)")
    store._db.execute("INSERT INTO clips(video_id, start, end, thumbnail, text, visual, text_vector,"
                      " gen_added) VALUES (1, 0, 1, 't0.jpg', 'clip 0', ?, ?, 1), (1, 1, 2, 't1.jpg',"
                      " 'clip 1', ?, ?, 1)", (b"\0" * 32, b"\0" * 16) * 2)
    store.close()


def columns(path):
    db = sqlite3.connect(path)
    try:
        return [row[1] for row in db.execute("PRAGMA table_info(videos)")]
    finally:
        db.close()


def test_old_file_is_read_as_it_is_and_migrated_by_a_writer(tmp_path):
    path = tmp_path / "m.sqlite"
    old_store(path)
    reader = MetadataStore(path, readonly=True)
    [video] = reader.videos(1)
    assert (video.content_hash, video.clips, video.speech) == ("a", 2, NO_SPEECH)
    reader.close()
    assert "speech" not in columns(path)  # a reader changes nothing

    writer = MetadataStore(path)
    assert columns(path)[-1] == "speech"
    writer.add_video("/v/b.mp4", "b", 1.0, clips(1), vectors(1, 8, 1), vectors(1, 4, 1), gen=2, speech="k1")
    assert [(v.content_hash, v.clips, v.speech) for v in writer.videos(2)] == [("a", 2, NO_SPEECH), ("b", 1, "k1")]
    writer.close()
    assert [v.speech for v in MetadataStore(path).videos(2)] == [NO_SPEECH, "k1"]  # opened again: as is
